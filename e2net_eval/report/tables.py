"""The table engine of `report` and `compare`: Table-1/2/3-style tables (measured rows with
95% bootstrap intervals apart from the paper's published rows), paired comparisons, the
further metrics other tools report and every-metric tables, built from `Entry` objects (pandas frames of `evaluate` outputs) and
rendered by `render.py`/`html.py` to Markdown, LaTeX, CSV and HTML.

Point estimates are read from the summaries (never recomputed): each measured cell of a
leaderboard column is the value at the column's ``summary_key`` times its ``scale``. Only
the intervals are computed here, by resampling the per-case values, as the metric
registry's ``interval`` of that key says. Directions, units and the list of metrics come
from the registry: a metric registered there shows up in the every-metric tables.

The run-specific assembly (which set feeds which table, the report's notes) is at the end
(`table1`..`table3`, `build_tables`); `compare.py` assembles its own from the same parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from e2net_eval.metrics.registry import (
    METRICS,
    REGIONS,
    Metric,
    case_metrics,
    lesion_metrics,
    metric_for,
)
from e2net_eval.report import stats
from e2net_eval.report.entries import Entry, Replicated, aligned, per_case_column
from e2net_eval.report.leaderboards import load_table, method_label
from e2net_eval.report.results import RunResults
from e2net_eval.rundir import SET_TITLES
from reference_models.registry import paired_comparisons

MEASURED, PUBLISHED = "measured", "published"


@dataclass
class Cell:
    """One number: value in the table's unit (Dice in %), interval, n; None when missing."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int | None = None
    decimals: int = 1

    @property
    def text(self) -> str:
        if self.value is None:
            return "-"
        d = self.decimals
        if self.low is None or self.high is None:
            return f"{self.value:.{d}f}"
        return f"{self.value:.{d}f} [{self.low:.{d}f}, {self.high:.{d}f}]"


@dataclass
class Row:
    section: str  # MEASURED or PUBLISHED
    label: str
    cells: list[Cell]
    source: str  # provenance: protocol/profile/seed/split, or the published split
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReportTable:
    key: str
    title: str
    columns: list[tuple[str, str]]  # (key, label)
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    def section(self, name: str) -> list[Row]:
        return [r for r in self.rows if r.section == name]


# -- cells and rows ------------------------------------------------------------------------
def figure_cell(entry: Entry, key: str, scale: float = 1.0, decimals: int = 1) -> Cell:
    """The set figure at `key` times `scale`, with its bootstrap interval."""
    value = entry.value(key)
    if value is None:
        return Cell(None, decimals=decimals)
    ci = entry.interval(key)
    if ci is None or ci.low is None:
        return Cell(scale * value, n=None if ci is None else ci.n, decimals=decimals)
    return Cell(scale * value, scale * ci.low, scale * ci.high, ci.n, decimals)


def measured_cell(entry: Entry, column: dict[str, Any]) -> Cell:
    """A leaderboard column's measured cell: value at `summary_key` x `scale`, interval."""
    return figure_cell(entry, column["summary_key"], column["scale"], column["decimals"])


def measured_rows(entries: Sequence[Entry], columns: list[dict]) -> list[Row]:
    """One measured row per entry, filled through a published table's columns; tumour
    columns are '-' for an entry without tumour output."""
    rows = []
    for e in entries:
        cells = [
            Cell(None, decimals=c["decimals"])
            if "tumour" in c["summary_key"] and not e.segments_tumour
            else measured_cell(e, c)
            for c in columns
        ]
        rows.append(Row(MEASURED, e.label, cells, e.source, dict(e.meta)))
    return rows


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


def leaderboard_table(
    number: int, entries: Sequence[Entry], key: str, title: str, notes: Sequence[str] = ()
) -> ReportTable:
    """Measured rows of `entries` beside the paper's Table `number`, in its columns."""
    published, pub_rows = published_rows(number)
    return ReportTable(
        key,
        title,
        [(c["key"], c["label"]) for c in published["columns"]],
        measured_rows(entries, published["columns"]) + pub_rows,
        list(notes),
    )


# -- paired comparisons -------------------------------------------------------------------
def paired_table(
    key: str,
    title: str,
    pairs: Sequence[tuple[Entry, Entry]],
    summary_keys: Sequence[str],
    *,
    holm: bool = False,
    notes: Sequence[str] = (),
) -> ReportTable | None:
    """B minus A on the cases both have, for each pair and each per-case-mean figure of
    `summary_keys` (Dice per case: percentage points): n, mean difference with a 95% paired
    bootstrap interval, two-sided Wilcoxon p; with `holm`, Holm-adjusted p within each
    figure's family of comparisons. None when no pair has a figure to compare."""
    tests = []  # (a, b, summary key, region, PairedTest)
    for skey in summary_keys:
        source = per_case_column(skey)
        if source is None:
            continue
        region, column = source
        for a, b in pairs:
            if region == "tumour" and not (a.segments_tumour and b.segments_tumour):
                continue
            _, va, vb = aligned(a, b, region, column)
            tests.append((a, b, skey, region, stats.paired_test(a.name, b.name, va, vb)))
    if not tests:
        return None
    adjusted: dict[int, float | None] = {}
    if holm:
        for skey in dict.fromkeys(t[2] for t in tests):
            family = [i for i, t in enumerate(tests) if t[2] == skey]
            for i, p in zip(
                family, stats.holm([tests[i][4].wilcoxon_p for i in family]), strict=True
            ):
                adjusted[i] = p
    rows = []
    for i, (a, b, skey, region, t) in enumerate(tests):
        scale = 100.0 if _is_dice(skey) else 1.0
        diff = Cell(
            None if t.mean_diff is None else scale * t.mean_diff,
            None if t.low is None else scale * t.low,
            None if t.high is None else scale * t.high,
            t.n,
            decimals=2,
        )
        cells = [Cell(float(t.n), decimals=0), diff, Cell(t.wilcoxon_p, decimals=3)]
        if holm:
            cells.append(Cell(adjusted[i], decimals=3))
        what = region if _is_dice(skey) else f"{region} {metric_for(skey).name}"
        rows.append(
            Row(
                MEASURED,
                f"{b.short_label} vs {a.short_label}, {what}",
                cells,
                b.source,
                {**b.meta, "a": a.name, "b": b.name, "region": region},
            )
        )
    columns = [("n", "n"), ("diff", "Mean difference (pp) [95% CI]"), ("p", "Wilcoxon p")]
    if holm:
        columns.append(("p_holm", "Holm p"))
    return ReportTable(key, title, columns, rows, list(notes))


def _is_dice(summary_key: str) -> bool:
    metric = metric_for(summary_key)
    return metric is not None and (metric.per_case or metric.name) == "dice"


def paired_notes(n: int, holm: bool, what: str = "configurations") -> list[str]:
    """What a paired table's numbers mean, and what they cannot say with `n` cases."""
    notes = [
        "Difference = B - A in Dice percentage points, mean over paired cases with a 95% paired "
        "bootstrap interval; p = two-sided Wilcoxon signed-rank test ('-' when all differences are 0).",
    ]
    power = (
        f"With n = {n} cases the tests have little power: with n <= 5 no Wilcoxon p can be below "
        f"0.05; a large p is not evidence that two {what} are equal."
    )
    if holm:
        notes.append(
            "Holm p: Holm's step-down correction over the comparisons of one region (a test "
            "without p counts as p = 1)."
        )
        notes.append(power)
    else:
        notes.append(power + " No correction for multiple comparisons.")
    return notes


# -- replicates: spread and wins over repeated runs -------------------------------------
def spread_table(
    key: str,
    title: str,
    groups: Sequence[Replicated],
    columns: list[dict[str, Any]],
    published: Sequence[Row] = (),
    notes: Sequence[str] = (),
) -> ReportTable:
    """One row per configuration measured over replicates: for each column of a published
    table (its `summary_key` x `scale`), the mean over replicates, the between-replicate
    standard deviation and the range (min, max); the `published` rows (one run each) fill
    the mean column. Tumour columns are '-' for a configuration without tumour output."""
    table_columns, rows = [], []
    for c in columns:
        table_columns += [
            (f"{c['key']}_mean", f"{c['label']}: mean"),
            (f"{c['key']}_sd", "SD"),
            (f"{c['key']}_min", "min"),
            (f"{c['key']}_max", "max"),
        ]
    for g in groups:
        cells = []
        for c in columns:
            d = c["decimals"]
            if "tumour" in c["summary_key"] and not g.segments_tumour:
                cells += [Cell(None, decimals=d) for _ in range(4)]
                continue
            values = [None if v is None else c["scale"] * v for v in g.values(c["summary_key"])]
            sp = stats.spread(values)
            cells += [
                Cell(sp.mean, n=sp.n, decimals=d),
                Cell(sp.sd, n=sp.n, decimals=d + 1),
                Cell(sp.low, n=sp.n, decimals=d),
                Cell(sp.high, n=sp.n, decimals=d),
            ]
        rows.append(Row(MEASURED, g.label, cells, g.source, dict(g.meta)))
    for r in published:
        cells = []
        for c, cell in zip(columns, r.cells, strict=True):
            cells += [cell] + [Cell(None, decimals=c["decimals"]) for _ in range(3)]
        rows.append(Row(r.section, r.label, cells, r.source, dict(r.meta)))
    return ReportTable(key, title, table_columns, rows, list(notes))


def wins_table(
    key: str,
    title: str,
    pairs: Sequence[tuple[Replicated, Replicated]],
    summary_keys: Sequence[str],
    paper: dict[tuple[str, str, str], float] | None = None,
    notes: Sequence[str] = (),
) -> ReportTable | None:
    """B against A over the replicates both have, for each pair and each figure of
    `summary_keys` (Dice per case: percentage points): how many replicates, the fraction B
    wins (ties half), the mean, SD and range of B - A, the sign test p, and the paper's own
    difference (`paper[(a, b, summary key)]`, one run) where it has one. None when no pair
    has a figure to compare."""
    paper = paper or {}
    rows = []
    for a, b in pairs:
        common = sorted(set(a.by_replicate) & set(b.by_replicate))
        for skey in summary_keys:
            region = skey.split(".")[1] if skey.startswith("regions.") else ""
            if region == "tumour" and not (a.segments_tumour and b.segments_tumour):
                continue
            scale = 100.0 if _is_dice(skey) else 1.0
            va = [None if v is None else scale * v for v in a.values(skey, common)]
            vb = [None if v is None else scale * v for v in b.values(skey, common)]
            w = stats.wins(va, vb)
            if w.n == 0:
                continue
            published = paper.get((a.name, b.name, skey))
            cells = [
                Cell(float(w.n), decimals=0),
                Cell(w.fraction, n=w.n, decimals=2),
                Cell(w.diff.mean, n=w.n, decimals=2),
                Cell(w.diff.sd, n=w.n, decimals=2),
                Cell(w.diff.low, n=w.n, decimals=2),
                Cell(w.diff.high, n=w.n, decimals=2),
                Cell(w.sign_p, n=w.n, decimals=3),
                Cell(published, decimals=1),
            ]
            what = region if _is_dice(skey) else f"{region} {metric_for(skey).name}"
            rows.append(
                Row(
                    MEASURED,
                    f"{b.label} vs {a.label}, {what}",
                    cells,
                    b.source,
                    {**b.meta, "a": a.name, "b": b.name, "region": region},
                )
            )
    if not rows:
        return None
    columns = [
        ("n", "replicates"),
        ("wins", "B better in (fraction)"),
        ("diff", "B - A mean (pp)"),
        ("sd", "SD (pp)"),
        ("min", "min (pp)"),
        ("max", "max (pp)"),
        ("sign_p", "sign test p"),
        ("paper", "paper B - A (pp, one run)"),
    ]
    return ReportTable(key, title, columns, rows, list(notes))


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


# -- every metric of the registry --------------------------------------------------------
def metric_label(name: str) -> str:
    """A column label from the registry: name, unit and which way is better."""
    metric = METRICS.get(name)
    if metric is None:
        return name
    unit = f" ({metric.unit})" if metric.unit else ""
    arrow = "↑" if metric.higher_is_better else "↓"
    words = name.replace("_", " ")
    return f"{words}{unit}, |x| {arrow}" if metric.absolute else f"{words}{unit} {arrow}"


def _decimals(name: str) -> int:
    """Two decimals for distances (mm), three for fractions (Dice, VOE, F1, burden)."""
    metric = METRICS.get(name)
    return 2 if metric is not None and metric.unit == "mm" else 3


def metrics_table(
    key: str,
    title: str,
    entries: Sequence[Entry],
    regions: Sequence[str],
    levels: Sequence[str],
    *,
    peer: bool = False,
) -> ReportTable | None:
    """One row per entry, one column per metric of the registry found in the entries'
    summaries (in the given regions and levels; the registry's `peer` metrics only with
    `peer`), in the summary's own unit with its interval. None when there is no such metric."""
    found: dict[str, tuple[str, str]] = {}  # summary key -> (region, metric name)
    for e in entries:
        table = e.evaluation.table
        for region, name, skey, level in zip(
            table["region"], table["metric"], table["key"], table["level"], strict=True
        ):
            metric = METRICS.get(name)
            if metric is None or (metric.peer and not peer):
                continue  # unknown to this version (no direction), or a peer metric
            if region in regions and level in levels:
                found.setdefault(skey, (region, name))
    # a per-case metric whose mean a region figure already is (dice -> dice_per_case)
    summarised = {
        (r, METRICS[n].per_case) for r, n in found.values() if n in METRICS and METRICS[n].per_case
    }
    found = {k: v for k, v in found.items() if v not in summarised}
    order = list(METRICS)
    keys = sorted(
        found,
        key=lambda k: (
            list(regions).index(found[k][0]),
            order.index(found[k][1]) if found[k][1] in order else len(order),
        ),
    )
    if not keys:
        return None
    multi = len(regions) > 1
    columns = [
        (k, f"{found[k][0]} {metric_label(found[k][1])}" if multi else metric_label(found[k][1]))
        for k in keys
    ]
    rows = [
        Row(
            MEASURED,
            e.label,
            [figure_cell(e, k, decimals=_decimals(found[k][1])) for k in keys],
            e.source,
            dict(e.meta),
        )
        for e in entries
    ]
    notes = [
        "The metrics of the registry (e2net_eval/metrics/registry.py) found in the summaries, "
        "in their own unit (Dice as a fraction); ↑ higher is better, ↓ lower is better; |x| ↓: "
        "a signed mean (RVD) whose magnitude counts. Per-case metrics: mean of the defined "
        "values with a 95% bootstrap interval; undefined cases are left out (n per cell in "
        "tables.csv)."
    ]
    return ReportTable(key, title, columns, rows, notes)


# -- the metrics other tools report ----------------------------------------------------
_SHORT = {"hd95": "HD95", "hd95_pooled": "HD95 pooled", "nsd": "NSD", "masd": "MASD"}
_SHORT |= {"rq": "RQ", "sq": "SQ", "pq": "PQ", "lesion_dice": "Dice"}
#: Per-region peer metrics left out of the tables (a variant, kept in the summary files).
_PEER_SKIPS = {"hd95_pooled"}


def _peer_columns(entry: Entry, kind: str) -> list[tuple[str, Metric, str | None]]:
    """(summary key of the stats block, registry entry, region or None for lesion-wise) of
    the peer metrics of `kind` ("surface" or "lesion") the entry holds, registry order."""
    keys = set(entry.evaluation.table["key"])
    if kind == "surface":
        return [
            (f"regions.{region}.{m.name}", m, region)
            for region in REGIONS
            for m in case_metrics()
            if m.peer and m.name not in _PEER_SKIPS and f"regions.{region}.{m.name}" in keys
        ]
    return [
        (f"panoptic.{m.name}", m, None) for m in lesion_metrics() if f"panoptic.{m.name}" in keys
    ]


def _peer_label(metric: Metric, region: str | None) -> str:
    unit = f" ({metric.unit})" if metric.unit else ""
    arrow = "↑" if metric.higher_is_better else "↓"
    return f"{region or 'lesion'} {_SHORT.get(metric.name, metric.name)}{unit} {arrow}"


def peer_table(entries: Sequence[Entry], kind: str, key: str, where: str) -> ReportTable | None:
    """The metrics other tools report, measured rows only: `kind` "surface" (HD95, NSD, MASD
    per region) or "lesion" (lesion-wise RQ, SQ, PQ, Dice); mean per case [95% bootstrap
    CI], each column marked with its registry direction. None when no entry has them."""
    shown = [e for e in entries if _peer_columns(e, kind)]
    if not shown:
        return None
    columns = _peer_columns(shown[0], kind)
    rows = []
    for e in shown:
        cells = []
        for skey, metric, region in columns:
            tumour = region == "tumour" or region is None
            if e.value(skey) is None or (tumour and not e.segments_tumour):
                cells.append(Cell(None, decimals=2))
            else:
                cells.append(figure_cell(e, skey, decimals=2 if metric.unit == "mm" else 3))
        rows.append(Row(MEASURED, e.label, cells, e.source, dict(e.meta)))
    tau = shown[0].evaluation.meta.get("nsd_tolerance_mm")
    if kind == "surface":
        what = (
            "HD95, NSD and MASD on 6-neighbourhood surfaces, as MONAI, medpy and "
            "MetricsReloaded" + (f"; NSD tolerance τ = {tau:g} mm" if tau is not None else "")
        )
        title = f"Further metrics on {where}: surface distances"
    else:
        what = "Lesions matched one to one at IoU > 0.5, no merging, as panoptica"
        title = f"Further metrics on {where}: lesion-wise quality"
    notes = [
        "Mean over cases [95% bootstrap interval]; ↑ higher is better, ↓ lower is better (the "
        f"metric registry's direction, as regress gates it). {what}. Definitions and "
        "agreement with those tools: docs/metrics.md. No published row: the paper reports "
        "none of these.",
    ]
    return ReportTable(
        key,
        title,
        [(k, _peer_label(metric, region)) for k, metric, region in columns],
        rows,
        notes,
    )


# -- the report of an ablation run --------------------------------------------------------
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
    return leaderboard_table(
        3,
        run.entries("lits_val"),
        "table3",
        "Table 3 style: configurations on LiTS validation, Dice per case (%)",
        notes,
    )


#: The figures the report's paired tables compare (Dice per case, liver and tumour).
PAIRED_KEYS = ("regions.liver.dice_per_case", "regions.tumour.dice_per_case")


def run_paired_table(run: RunResults, set_name: str) -> ReportTable | None:
    """The catalogue's `paired_comparisons` on one set of the run."""
    by_name = {e.name: e for e in run.entries(set_name)}
    pairs = [
        (by_name[a], by_name[b]) for a, b in paired_comparisons() if a in by_name and b in by_name
    ]
    # liver and tumour of one pair follow each other, as the report has always shown them
    pairs_tables = [paired_table(f"paired_{set_name}", "", [pair], PAIRED_KEYS) for pair in pairs]
    rows = [r for t in pairs_tables if t is not None for r in t.rows]
    if not rows:
        return None
    n = max(int(r.cells[0].value or 0) for r in rows)
    first = next(t for t in pairs_tables if t is not None)
    return ReportTable(
        f"paired_{set_name}",
        f"Paired comparisons on {run.split_label(set_name)}",
        first.columns,
        rows,
        paired_notes(n, holm=False),
    )


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


def _paper_differences(set_name: str) -> dict[tuple[str, str, str], float]:
    """The paper's B - A of each catalogue pair in Table 3 (its one run), by summary key."""
    if set_name != "lits_val":
        return {}
    table = load_table(3)
    by_config = {r["config"]: r["values"] for r in table["rows"] if r.get("config")}
    out = {}
    for a, b in paired_comparisons():
        if a not in by_config or b not in by_config:
            continue
        for c in table["columns"]:
            va, vb = by_config[a].get(c["key"]), by_config[b].get(c["key"])
            if va is not None and vb is not None:
                out[(a, b, c["summary_key"])] = round(vb - va, 6)
    return out


def run_wins_table(run: RunResults, set_name: str) -> ReportTable | None:
    """The catalogue's `paired_comparisons` over the run's replicates: how often the later
    configuration wins, beside the paper's difference."""
    by_name = {g.name: g for g in run.replicated(set_name)}
    pairs = [
        (by_name[a], by_name[b]) for a, b in paired_comparisons() if a in by_name and b in by_name
    ]
    k = max((len(g.by_replicate) for g in by_name.values()), default=0)
    notes = [
        "B better in: the fraction of replicates in which B's Dice per case is higher than A's "
        "(a tie counts half). B - A: mean, SD and range over replicates of the difference in "
        "Dice per case (percentage points). Sign test: two-sided binomial test of 'B and A "
        "are equally likely to be better' over the replicates that did not tie. The paper's "
        "difference is between the two rows of its Table 3 (one run).",
        chance_note(k),
    ]
    return wins_table(
        f"wins_{set_name}",
        f"Which configuration wins over {k} replicates: {SET_TITLES[set_name]}",
        pairs,
        PAIRED_KEYS,
        _paper_differences(set_name),
        notes,
    )


def run_peer_table(run: RunResults, set_name: str, kind: str) -> ReportTable | None:
    """`peer_table` of one set of the run."""
    return peer_table(
        run.entries(set_name), kind, f"peer_{kind}_{set_name}", run.split_label(set_name)
    )


def build_tables(run: RunResults) -> list[ReportTable]:
    """Every table a report shows, in order."""
    out = [table1(run), table2(run), table3(run)]
    for s in ("lits_val", "ircadb"):  # a run of several replicates: their spread and wins
        out += [run_spread_table(run, s), run_wins_table(run, s)]
    out += [run_paired_table(run, s) for s in ("lits_val", "ircadb")]
    out += [
        run_peer_table(run, s, k) for s in ("lits_val", "ircadb") for k in ("surface", "lesion")
    ]
    return [t for t in out if t is not None]
