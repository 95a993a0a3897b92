"""Paired comparisons: B minus A on the cases two entries share (mean difference with a
95% paired bootstrap interval, Wilcoxon p, optionally Holm-adjusted), and over the
replicates of a run, how often B wins (sign test) beside the paper's own difference.

The figures compared are a published table's per-case-mean columns (Dice per case), in
that column's ``scale`` (percentage points for Dice).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from e2net_eval.metrics.registry import metric_for
from e2net_eval.report import stats
from e2net_eval.report.entries import Entry, Replicated, aligned, per_case_column
from e2net_eval.report.leaderboards import load_table
from e2net_eval.report.paper_tables import chance_note, published_by_config
from e2net_eval.report.results import RunResults
from e2net_eval.report.tables import MEASURED, Cell, ReportTable, Row
from e2net_eval.rundir import SET_TITLES
from reference_models.registry import paired_comparisons

PAIRED_COLUMNS = [("n", "n"), ("diff", "Mean difference (pp) [95% CI]"), ("p", "Wilcoxon p")]
WINS_COLUMNS = [
    ("n", "replicates"),
    ("wins", "B better in (fraction)"),
    ("diff", "B - A mean (pp)"),
    ("sd", "SD (pp)"),
    ("min", "min (pp)"),
    ("max", "max (pp)"),
    ("sign_p", "sign test p"),
    ("paper", "paper B - A (pp, one run)"),
]


def per_case_columns(number: int = 3) -> list[dict[str, Any]]:
    """The columns of the paper's Table `number` whose figure is a mean over cases (Dice
    per case): what the paired tables compare."""
    return [c for c in load_table(number)["columns"] if per_case_column(c["summary_key"])]


def _pair_row(a: Any, b: Any, summary_key: str, region: str, cells: list[Cell]) -> Row:
    """'B vs A, region' (the metric named unless it is Dice), with B's provenance."""
    metric = metric_for(summary_key)
    dice = metric is not None and (metric.per_case or metric.name) == "dice"
    what = region if dice else f"{region} {metric.name}"
    meta = {**b.meta, "a": a.name, "b": b.name, "region": region}
    return Row(MEASURED, f"{b.short_label} vs {a.short_label}, {what}", cells, b.source, meta)


def _holm(keys: list[str], pvalues: list[float | None]) -> list[float | None]:
    """Holm-adjusted p within each summary key's family of comparisons, in input order."""
    adjusted: list[float | None] = [None] * len(keys)
    for key in dict.fromkeys(keys):
        family = [i for i, k in enumerate(keys) if k == key]
        for i, p in zip(family, stats.holm([pvalues[i] for i in family]), strict=True):
            adjusted[i] = p
    return adjusted


def paired_table(
    key: str,
    title: str,
    pairs: Sequence[tuple[Entry, Entry]],
    columns: Sequence[dict[str, Any]],
    *,
    holm: bool = False,
    notes: Sequence[str] = (),
) -> ReportTable | None:
    """B minus A on the cases both have, for each pair and each per-case-mean figure of
    `columns` (a published table's, in its `scale`): n, mean difference with a 95% paired
    bootstrap interval, two-sided Wilcoxon p; with `holm`, Holm-adjusted p within each
    figure's family of comparisons. None when no pair has a figure to compare."""
    tests = []  # (a, b, column, region, PairedTest)
    for c in columns:
        source = per_case_column(c["summary_key"])
        if source is None:
            continue
        region, column = source
        for a, b in pairs:
            if region == "tumour" and not (a.segments_tumour and b.segments_tumour):
                continue
            _, va, vb = aligned(a, b, region, column)
            tests.append((a, b, c, region, stats.paired_test(a.name, b.name, va, vb)))
    if not tests:
        return None
    adjusted = _holm([t[2]["summary_key"] for t in tests], [t[4].wilcoxon_p for t in tests])
    rows = []
    for (a, b, c, region, t), p_holm in zip(tests, adjusted, strict=True):
        scaled = (None if v is None else c["scale"] * v for v in (t.mean_diff, t.low, t.high))
        cells = [Cell(float(t.n), decimals=0), Cell(*scaled, t.n, decimals=2)]
        cells += [Cell(t.wilcoxon_p, decimals=3)] + ([Cell(p_holm, decimals=3)] if holm else [])
        rows.append(_pair_row(a, b, c["summary_key"], region, cells))
    table_columns = PAIRED_COLUMNS + ([("p_holm", "Holm p")] if holm else [])
    return ReportTable(key, title, table_columns, rows, list(notes))


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


def _wins_cells(a: Replicated, b: Replicated, c: dict[str, Any], paper: float | None):
    """The cells of one pair and one column over the replicates both have; None when no
    replicate has the figure in both."""
    common = sorted(set(a.by_replicate) & set(b.by_replicate))
    skey, scale = c["summary_key"], c["scale"]
    va = [None if v is None else scale * v for v in a.values(skey, common)]
    vb = [None if v is None else scale * v for v in b.values(skey, common)]
    w = stats.wins(va, vb)
    if w.n == 0:
        return None
    spread = (w.fraction, w.diff.mean, w.diff.sd, w.diff.low, w.diff.high)
    cells = [Cell(float(w.n), decimals=0), *[Cell(v, n=w.n, decimals=2) for v in spread]]
    return cells + [Cell(w.sign_p, n=w.n, decimals=3), Cell(paper, decimals=1)]


def wins_table(
    key: str,
    title: str,
    pairs: Sequence[tuple[Replicated, Replicated]],
    columns: Sequence[dict[str, Any]],
    paper: dict[tuple[str, str, str], float] | None = None,
    notes: Sequence[str] = (),
) -> ReportTable | None:
    """B against A over the replicates both have, for each pair and each figure of
    `columns` (in its `scale`): how many replicates, the fraction B wins (ties half), the
    mean, SD and range of B - A, the sign test p, and the paper's own difference
    (`paper[(a, b, summary key)]`, one run) where it has one. None when no pair has a
    figure to compare."""
    paper = paper or {}
    rows = []
    for a, b in pairs:
        for c in columns:
            skey = c["summary_key"]
            region = skey.split(".")[1] if skey.startswith("regions.") else ""
            if region == "tumour" and not (a.segments_tumour and b.segments_tumour):
                continue
            cells = _wins_cells(a, b, c, paper.get((a.name, b.name, skey)))
            if cells is not None:
                rows.append(_pair_row(a, b, skey, region, cells))
    return ReportTable(key, title, WINS_COLUMNS, rows, list(notes)) if rows else None


# -- the tables of an ablation run ---------------------------------------------------------
def _pairs(items: Sequence[Any]) -> list[tuple[Any, Any]]:
    """The catalogue's `paired_comparisons` among `items` (entries or groups, by name)."""
    by_name = {x.name: x for x in items}
    return [(by_name[a], by_name[b]) for a, b in paired_comparisons() if {a, b} <= set(by_name)]


def run_paired_table(run: RunResults, set_name: str) -> ReportTable | None:
    """The catalogue's `paired_comparisons` on one set of the run."""
    columns = per_case_columns()
    # liver and tumour of one pair follow each other, as the report has always shown them
    tables = [paired_table("", "", [pair], columns) for pair in _pairs(run.entries(set_name))]
    rows = [r for t in tables if t is not None for r in t.rows]
    if not rows:
        return None
    n = max(int(r.cells[0].value or 0) for r in rows)
    title = f"Paired comparisons on {run.split_label(set_name)}"
    return ReportTable(
        f"paired_{set_name}", title, PAIRED_COLUMNS, rows, paired_notes(n, holm=False)
    )


def _paper_differences(set_name: str) -> dict[tuple[str, str, str], float]:
    """The paper's B - A of each catalogue pair in Table 3 (its one run), by summary key."""
    if set_name != "lits_val":
        return {}
    table, by_config = published_by_config(3)
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
    groups = run.replicated(set_name)
    k = max((len(g.by_replicate) for g in groups), default=0)
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
        _pairs(groups),
        per_case_columns(),
        _paper_differences(set_name),
        notes,
    )
