"""Table-1/2/3-style tables: measured rows (with 95% bootstrap intervals) apart from the
paper's published rows, as one model rendered to Markdown, LaTeX, CSV and HTML.

Point estimates are read from summary.json (never recomputed); only the intervals are
computed here, by resampling the per-case values the summary lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from e2net_eval.report import stats
from e2net_eval.report.leaderboards import load_table, method_label
from e2net_eval.report.rundir import CONFIG_LABELS, RunResults, per_case

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


def _dice_cells(summary: dict[str, Any], region: str, glob: bool) -> list[Cell]:
    """Per-case Dice (and global Dice when `glob`) of one region, in %, with intervals."""
    block = summary["regions"][region]
    values = per_case(summary, region, "dice")
    ci = stats.bootstrap(values)
    cells = [_pct(block.get("dice_per_case"), ci)]
    if glob:
        rows = []
        for row in summary["metric_per_case"]:
            r = row.get(region) or {}
            if r.get("dice") is None or "ref_voxels" not in r or "pred_voxels" not in r:
                rows = []
                break
            size = r["ref_voxels"] + r["pred_voxels"]
            inter = r.get("intersection", r["dice"] * size / 2.0)  # older summaries lack it
            rows.append((inter, r["pred_voxels"], r["ref_voxels"]))
        ci_g = stats.bootstrap(np.asarray(rows, dtype=float), stats.global_dice) if rows else None
        cells.append(_pct(block.get("dice_global"), ci_g))
    return cells


def _pct(value: float | None, ci: stats.Interval | None) -> Cell:
    if value is None:
        return Cell(None)
    if ci is None or ci.low is None:
        return Cell(100 * value, n=None if ci is None else ci.n)
    return Cell(100 * value, 100 * ci.low, 100 * ci.high, ci.n)


def _burden_cell(summary: dict[str, Any]) -> Cell:
    tb = summary.get("tumour_burden") or {}
    errors = []
    for row in summary["metric_per_case"]:
        b = row.get("tumour_burden") or {}
        if b.get("reference") is not None and b.get("predicted") is not None:
            errors.append(b["predicted"] - b["reference"])
    ci = stats.bootstrap(errors, stats.rmse)
    if tb.get("rmse") is None:
        return Cell(None, decimals=3)
    return Cell(tb["rmse"], ci.low, ci.high, ci.n, decimals=3)


def _published_rows(number: int) -> tuple[dict[str, Any], list[Row]]:
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


def _measured_meta(run: RunResults, set_name: str, config: str) -> dict[str, Any]:
    return {
        "config": config,
        "protocol": run.protocol,
        "profile": run.profile,
        "seed": run.seed,
        "split": run.split_label(set_name),
        "dataset": set_name,
    }


def table1(run: RunResults) -> ReportTable | None:
    """Liver/tumour Dice per case and global, burden RMSE: stage-2 configs on LiTS validation."""
    if "lits_val" not in run.summaries:
        return None
    published, pub_rows = _published_rows(1)
    rows = []
    for config in run.configs("lits_val"):
        if config == "stage1":
            continue  # no tumour output: Table 1's tumour columns would be meaningless
        s = run.summaries["lits_val"][config]
        cells = _dice_cells(s, "liver", True) + _dice_cells(s, "tumour", True) + [_burden_cell(s)]
        rows.append(
            Row(
                MEASURED,
                CONFIG_LABELS.get(config, config),
                cells,
                run.provenance("lits_val"),
                _measured_meta(run, "lits_val", config),
            )
        )
    notes = [
        "Published rows are the LiTS *test* set scored online (70 cases); the server no longer "
        "scores submissions, so measured rows use the LiTS validation split instead: the two "
        "are not the same cases and are not directly comparable.",
    ]
    return ReportTable(
        "table1",
        "Table 1 style: liver and tumour segmentation",
        [(c["key"], c["label"]) for c in published["columns"]],
        rows + pub_rows,
        notes,
    )


def _dice_per_case_rows(run: RunResults, set_name: str) -> list[Row]:
    """One measured row per configuration: liver and tumour Dice per case (stage 1: liver)."""
    rows = []
    for config in run.configs(set_name):
        s = run.summaries[set_name][config]
        tumour = [Cell(None)] if config == "stage1" else _dice_cells(s, "tumour", False)
        rows.append(
            Row(
                MEASURED,
                CONFIG_LABELS.get(config, config),
                _dice_cells(s, "liver", False) + tumour,
                run.provenance(set_name),
                _measured_meta(run, set_name, config),
            )
        )
    return rows


def table2(run: RunResults) -> ReportTable | None:
    """Dice per case on 3DIRCADb, every configuration."""
    if "ircadb" not in run.summaries:
        return None
    published, pub_rows = _published_rows(2)
    rows = _dice_per_case_rows(run, "ircadb")
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
    return ReportTable(
        "table2",
        "Table 2 style: 3DIRCADb, Dice per case (%)",
        [(c["key"], c["label"]) for c in published["columns"]],
        rows + pub_rows,
        notes,
    )


def table3(run: RunResults) -> ReportTable | None:
    """The six configurations on LiTS validation, Dice per case."""
    if "lits_val" not in run.summaries:
        return None
    published, pub_rows = _published_rows(3)
    rows = _dice_per_case_rows(run, "lits_val")
    notes = ["1st stage segments the liver only: its tumour cell is '-' in both sections."]
    return ReportTable(
        "table3",
        "Table 3 style: configurations on LiTS validation, Dice per case (%)",
        [(c["key"], c["label"]) for c in published["columns"]],
        rows + pub_rows,
        notes,
    )


def paired_table(run: RunResults, set_name: str) -> ReportTable | None:
    """B minus A per case (percentage points) for the config pairs of `stats.PAIRS`."""
    summaries = run.summaries.get(set_name, {})
    rows = []
    for a, b in stats.PAIRS:
        if a not in summaries or b not in summaries:
            continue
        for region in ("liver", "tumour"):
            if region == "tumour" and "stage1" in (a, b):
                continue
            va, vb = _aligned(summaries[a], summaries[b], region)
            t = stats.paired_test(a, b, va, vb)
            diff = Cell(
                None if t.mean_diff is None else 100 * t.mean_diff,
                None if t.low is None else 100 * t.low,
                None if t.high is None else 100 * t.high,
                t.n,
                decimals=2,
            )
            p = Cell(t.wilcoxon_p, decimals=3)
            label = f"{CONFIG_LABELS.get(b, b)} vs {CONFIG_LABELS.get(a, a)}, {region}"
            rows.append(
                Row(
                    MEASURED,
                    label,
                    [Cell(float(t.n), decimals=0), diff, p],
                    run.provenance(set_name),
                    {**_measured_meta(run, set_name, b), "a": a, "b": b, "region": region},
                )
            )
    if not rows:
        return None
    n = max(int(r.cells[0].value or 0) for r in rows)
    notes = [
        "Difference = B - A in Dice percentage points, mean over paired cases with a 95% paired "
        "bootstrap interval; p = two-sided Wilcoxon signed-rank test ('-' when all differences are 0).",
        f"With n = {n} cases the tests have little power: with n <= 5 no Wilcoxon p can be below "
        "0.05; a large p is not evidence that two configurations are equal. No correction for "
        "multiple comparisons.",
    ]
    return ReportTable(
        f"paired_{set_name}",
        f"Paired comparisons on {run.split_label(set_name)}",
        [("n", "n"), ("diff", "Mean difference (pp) [95% CI]"), ("p", "Wilcoxon p")],
        rows,
        notes,
    )


def _aligned(sa: dict[str, Any], sb: dict[str, Any], region: str) -> tuple[list, list]:
    """Per-case values of two summaries matched by case id (cases in both only)."""
    da = {str(r["case"]): (r.get(region) or {}).get("dice") for r in sa["metric_per_case"]}
    db = {str(r["case"]): (r.get(region) or {}).get("dice") for r in sb["metric_per_case"]}
    common = [c for c in da if c in db]
    return [da[c] for c in common], [db[c] for c in common]


def build_tables(run: RunResults) -> list[ReportTable]:
    """Every table a report shows, in order."""
    out = [table1(run), table2(run), table3(run)]
    out += [paired_table(run, s) for s in ("lits_val", "ircadb")]
    return [t for t in out if t is not None]
