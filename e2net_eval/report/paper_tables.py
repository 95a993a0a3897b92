"""The paper's Tables 1-3 with measured rows (95% bootstrap intervals) beside the published
ones, and each configuration's spread over the replicates of a run, in the same columns.

A published table's columns say how to fill them (`leaderboards/table*.json`): a measured
cell is the summary's value at the column's ``summary_key`` times its ``scale``, with the
interval the metric registry's ``interval`` of that key names (`Entry.interval`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from e2net_eval.report import stats
from e2net_eval.report.entries import Entry, Replicated
from e2net_eval.report.leaderboards import load_table, method_label
from e2net_eval.report.results import RunResults
from e2net_eval.report.tables import (
    PUBLISHED,
    Cell,
    ReportTable,
    Row,
    entry_row,
    figure_cell,
    tumour_figure,
)
from e2net_eval.rundir import SET_TITLES


def measured_rows(entries: Sequence[Entry], columns: list[dict]) -> list[Row]:
    """One measured row per entry, filled through a published table's columns; tumour
    columns are '-' for an entry without tumour output."""
    return [
        entry_row(
            e,
            [
                Cell(None, decimals=c["decimals"])
                if tumour_figure(c["summary_key"]) and not e.segments_tumour
                else figure_cell(e, c["summary_key"], c["scale"], c["decimals"])
                for c in columns
            ],
        )
        for e in entries
    ]


def published_rows(number: int) -> tuple[dict[str, Any], list[Row]]:
    """(the leaderboard table, its rows as published) of the paper's Table `number`."""
    table = load_table(number)
    rows = []
    for r in table["rows"]:
        cells = [Cell(r["values"][c["key"]], decimals=c["decimals"]) for c in table["columns"]]
        label = method_label(r) if number != 3 else r["method"]
        if r.get("group"):
            label = f"{r['group']}: {label}"
        meta = {"citation": r["citation"], "dataset": table["dataset"], "split": table["split"]}
        rows.append(Row(PUBLISHED, label, cells, table["split"], meta))
    return table, rows


def published_by_config(number: int) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(the paper's Table `number`, the published values of its rows that are catalogue
    configurations, by configuration)."""
    table = load_table(number)
    return table, {r["config"]: r["values"] for r in table["rows"] if r.get("config")}


def leaderboard_table(
    number: int, entries: Sequence[Entry], key: str, title: str, notes: Sequence[str] = ()
) -> ReportTable:
    """Measured rows of `entries` beside the paper's Table `number`, in its columns."""
    published, pub_rows = published_rows(number)
    columns = published["columns"]
    rows = measured_rows(entries, columns) + pub_rows
    return ReportTable(key, title, [(c["key"], c["label"]) for c in columns], rows, list(notes))


def _spread_cells(group: Replicated, c: dict[str, Any]) -> list[Cell]:
    """Mean, SD, min, max over replicates of one column's figure (its `summary_key` x
    `scale`); '-' for a tumour column of a configuration without tumour output."""
    d = c["decimals"]
    if tumour_figure(c["summary_key"]) and not group.segments_tumour:
        return [Cell(None, decimals=d) for _ in range(4)]
    sp = stats.spread(
        [None if v is None else c["scale"] * v for v in group.values(c["summary_key"])]
    )
    return [
        Cell(sp.mean, n=sp.n, decimals=d),
        Cell(sp.sd, n=sp.n, decimals=d + 1),
        Cell(sp.low, n=sp.n, decimals=d),
        Cell(sp.high, n=sp.n, decimals=d),
    ]


def spread_table(
    key: str,
    title: str,
    groups: Sequence[Replicated],
    columns: list[dict[str, Any]],
    published: Sequence[Row] = (),
    notes: Sequence[str] = (),
) -> ReportTable:
    """One row per configuration measured over replicates: for each column of a published
    table, the mean over replicates, the between-replicate standard deviation and the range
    (min, max); the `published` rows (one run each) fill the mean column."""
    table_columns = []
    for c in columns:
        table_columns += [(f"{c['key']}_mean", f"{c['label']}: mean"), (f"{c['key']}_sd", "SD")]
        table_columns += [(f"{c['key']}_min", "min"), (f"{c['key']}_max", "max")]
    rows = [entry_row(g, [x for c in columns for x in _spread_cells(g, c)]) for g in groups]
    for r in published:
        cells = []
        for c, cell in zip(columns, r.cells, strict=True):
            cells += [cell] + [Cell(None, decimals=c["decimals"]) for _ in range(3)]
        rows.append(Row(r.section, r.label, cells, r.source, dict(r.meta)))
    return ReportTable(key, title, table_columns, rows, list(notes))


def estimate_notes() -> list[str]:
    """What the measured numbers of a report or comparison are."""
    return [
        f"Intervals: 95% percentile bootstrap over cases, {stats.N_RESAMPLES} resamples, "
        f"seed {stats.BOOTSTRAP_SEED}; global Dice resamples cases with their voxel counts.",
        "Point estimates are those of each summary.json (written by `e2net-eval evaluate`).",
        "Dice per case follows the LiTS rule: 1 when prediction and reference are both empty.",
    ]


def replicate_notes(k: int, varies: str = "split and training seed") -> list[str]:
    """What a table over `k` replicates means; `varies`: what differs between them."""
    return [
        f"The {k} replicates differ only in their {varies} (the split seed draws the LiTS "
        "training/validation split, the training seed the initial weights and the order and "
        "crops of the samples). Mean: over replicates of each replicate's figure; SD: "
        "between-replicate standard deviation (n - 1); min, max: the range. The paper's rows "
        "are one run on one split: it publishes no spread.",
    ]


def chance_note(k: int) -> str:
    """How often an ordering holds in all `k` replicates by chance alone."""
    return (
        f"With {k} replicates, one configuration beats another in every replicate with "
        f"probability {2 * 0.5**k:.2g} (either way round) when the two are equally good; a "
        "difference smaller than its SD over replicates is within the noise of the seeds."
    )


# -- the tables of an ablation run ---------------------------------------------------------
def table1(run: RunResults) -> ReportTable | None:
    """Liver/tumour Dice per case and global, burden RMSE: stage-2 configs on LiTS validation."""
    if "lits_val" not in run.summaries:
        return None
    # a model without tumour output has no row: Table 1's tumour columns would be meaningless
    entries = [e for e in run.entries("lits_val") if e.segments_tumour]
    notes = [
        "Published rows are the LiTS *test* set scored online (70 cases); the server no longer "
        "scores submissions, so measured rows use the LiTS validation split instead: the two "
        "are not the same cases and are not directly comparable.",
    ]
    return leaderboard_table(
        1, entries, "table1", "Table 1 style: liver and tumour segmentation", notes
    )


def table2(run: RunResults) -> ReportTable | None:
    """Dice per case on 3DIRCADb, every configuration."""
    if "ircadb" not in run.summaries:
        return None
    leak = (
        "leak-free: the LiTS cases that are 3DIRCADb patients were excluded from training"
        if run.protocol == "leak-free"
        else "paper protocol: 3DIRCADb patients found among the LiTS cases stayed in training "
        "(test patients leak into training, as in the paper)"
    )
    notes = [
        f"Measured protocol: {leak}.",
        "The published E2Net row was trained on LiTS, which contains all 20 3DIRCADb patients.",
    ]
    return leaderboard_table(
        2, run.entries("ircadb"), "table2", "Table 2 style: 3DIRCADb, Dice per case (%)", notes
    )


def table3(run: RunResults) -> ReportTable | None:
    """The six configurations on LiTS validation, Dice per case."""
    if "lits_val" not in run.summaries:
        return None
    notes = ["1st stage segments the liver only: its tumour cell is '-' in both sections."]
    title = "Table 3 style: configurations on LiTS validation, Dice per case (%)"
    return leaderboard_table(3, run.entries("lits_val"), "table3", title, notes)


#: The published table whose columns the spread over replicates uses, per set.
SPREAD_TABLES = {"lits_val": 3, "ircadb": 2}


def run_spread_table(run: RunResults, set_name: str) -> ReportTable | None:
    """Each configuration's figures over the run's replicates beside the paper's one run
    (Table 3's columns on LiTS validation, Table 2's on 3DIRCADb)."""
    groups = run.replicated(set_name)
    if not groups:
        return None
    number = SPREAD_TABLES[set_name]
    published, pub_rows = published_rows(number)
    k = max(len(g.by_replicate) for g in groups)
    return spread_table(
        f"replicates_{set_name}",
        f"Table {number} style over {k} replicates: {SET_TITLES[set_name]}, mean, SD and range",
        groups,
        published["columns"],
        pub_rows,
        [*replicate_notes(k, run.replicates_vary(set_name)), chance_note(k)],
    )
