"""Table-1/2/3-style tables: measured rows (with 95% bootstrap intervals) apart from the
paper's published rows, as one model rendered to Markdown, LaTeX, CSV and HTML.

Point estimates are read from summary.json (never recomputed): each measured cell is the
value at its leaderboard column's ``summary_key`` times the column's ``scale``. Only the
intervals are computed here, by resampling the per-case values the summary lists, as the
metric registry's ``interval`` of that key says. Rows follow the catalogue's order and
labels; a model without a tumour output gets '-' in tumour columns (and no Table 1 row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from e2net_eval.metrics.registry import REGIONS, Metric, case_metrics, lesion_metrics, metric_for
from e2net_eval.report import stats
from e2net_eval.report.leaderboards import load_table, method_label
from e2net_eval.report.results import RunResults, per_case, segments_tumour
from reference_models.registry import model_label, paired_comparisons

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


def _lookup(summary: dict[str, Any], key: str) -> Any:
    """The value at a dotted `key` of a summary (None when any part is missing)."""
    value: Any = summary
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _global_dice_rows(summary: dict[str, Any], region: str) -> list[tuple[float, int, int]]:
    """(intersection, pred voxels, ref voxels) per case; [] when a case lacks them."""
    rows = []
    for row in summary["metric_per_case"]:
        r = row.get(region) or {}
        if r.get("dice") is None or "ref_voxels" not in r or "pred_voxels" not in r:
            return []
        size = r["ref_voxels"] + r["pred_voxels"]
        inter = r.get("intersection", r["dice"] * size / 2.0)  # older summaries lack it
        rows.append((inter, r["pred_voxels"], r["ref_voxels"]))
    return rows


def _interval(summary: dict[str, Any], key: str) -> stats.Interval | None:
    """The bootstrap interval of the set figure at `key`, as its registry entry says."""
    metric = metric_for(key)
    how = None if metric is None else metric.interval
    parts = key.split(".")
    region = parts[1] if parts[0] == "regions" and len(parts) > 2 else None
    if how == "mean" and region is not None:
        return stats.bootstrap(per_case(summary, region, metric.per_case))
    if how == "global_dice" and region is not None:
        rows = _global_dice_rows(summary, region)
        return stats.bootstrap(np.asarray(rows, dtype=float), stats.global_dice) if rows else None
    if how == "rmse_burden":
        errors = []
        for row in summary["metric_per_case"]:
            b = row.get("tumour_burden") or {}
            if b.get("reference") is not None and b.get("predicted") is not None:
                errors.append(b["predicted"] - b["reference"])
        return stats.bootstrap(errors, stats.rmse)
    return None


def measured_cell(summary: dict[str, Any], column: dict[str, Any]) -> Cell:
    """A leaderboard column's measured cell: value at `summary_key` x `scale`, interval."""
    key, scale, decimals = column["summary_key"], column["scale"], column["decimals"]
    value = _lookup(summary, key)
    ci = _interval(summary, key)
    if value is None:
        return Cell(None, decimals=decimals)
    if ci is None or ci.low is None:
        return Cell(scale * value, n=None if ci is None else ci.n, decimals=decimals)
    return Cell(scale * value, scale * ci.low, scale * ci.high, ci.n, decimals)


def _measured_cells(summary: dict[str, Any], config: str, columns: list[dict]) -> list[Cell]:
    """One measured row's cells; tumour columns are '-' for a model without tumour output."""
    return [
        Cell(None, decimals=c["decimals"])
        if "tumour" in c["summary_key"] and not segments_tumour(config)
        else measured_cell(summary, c)
        for c in columns
    ]


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
    # a model without tumour output has no row: Table 1's tumour columns would be meaningless
    rows = _measured_rows(run, "lits_val", published["columns"], tumour_only=True)
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


def _measured_rows(
    run: RunResults, set_name: str, columns: list[dict], *, tumour_only: bool = False
) -> list[Row]:
    """One measured row per configuration of the set, in catalogue order, filled through the
    published table's columns (`tumour_only`: skip models without a tumour output)."""
    rows = []
    for config in run.configs(set_name):
        if tumour_only and not segments_tumour(config):
            continue
        rows.append(
            Row(
                MEASURED,
                model_label(config),
                _measured_cells(run.summaries[set_name][config], config, columns),
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
    rows = _measured_rows(run, "ircadb", published["columns"])
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
    rows = _measured_rows(run, "lits_val", published["columns"])
    notes = ["1st stage segments the liver only: its tumour cell is '-' in both sections."]
    return ReportTable(
        "table3",
        "Table 3 style: configurations on LiTS validation, Dice per case (%)",
        [(c["key"], c["label"]) for c in published["columns"]],
        rows + pub_rows,
        notes,
    )


def paired_table(run: RunResults, set_name: str) -> ReportTable | None:
    """B minus A per case (percentage points) for the catalogue's `paired_comparisons`."""
    summaries = run.summaries.get(set_name, {})
    rows = []
    for a, b in paired_comparisons():
        if a not in summaries or b not in summaries:
            continue
        for region in ("liver", "tumour"):
            if region == "tumour" and not (segments_tumour(a) and segments_tumour(b)):
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
            label = f"{model_label(b)} vs {model_label(a)}, {region}"
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


_SHORT = {"hd95": "HD95", "hd95_pooled": "HD95 pooled", "nsd": "NSD", "masd": "MASD"}
_SHORT |= {"rq": "RQ", "sq": "SQ", "pq": "PQ", "lesion_dice": "Dice"}


#: Per-region peer metrics left out of the report (a variant, kept in the summary files).
_REPORT_SKIPS = {"hd95_pooled"}


def _peer_columns(summary: dict[str, Any], kind: str) -> list[tuple[str, Metric, str | None]]:
    """(summary key of the stats block, registry entry, region or None for lesion-wise) of
    the peer metrics of `kind` ("surface" or "lesion") the summary holds, registry order."""
    cols: list[tuple[str, Metric, str | None]] = []
    if kind == "surface":
        for region in REGIONS:
            block = summary.get("regions", {}).get(region) or {}
            for m in case_metrics():
                if m.peer and m.name not in _REPORT_SKIPS and isinstance(block.get(m.name), dict):
                    cols.append((f"regions.{region}.{m.name}", m, region))
    else:
        pan = summary.get("panoptic") or {}
        cols += [(f"panoptic.{m.name}", m, None) for m in lesion_metrics() if m.name in pan]
    return cols


def _peer_label(metric: Metric, region: str | None) -> str:
    unit = f" ({metric.unit})" if metric.unit else ""
    arrow = "↑" if metric.higher_is_better else "↓"
    return f"{region or 'lesion'} {_SHORT.get(metric.name, metric.name)}{unit} {arrow}"


def peer_table(run: RunResults, set_name: str, kind: str) -> ReportTable | None:
    """The metrics other tools report, measured rows only: `kind` "surface" (HD95, NSD, MASD
    per region) or "lesion" (lesion-wise RQ, SQ, PQ, Dice); mean per case [95% bootstrap
    CI], each column marked with its registry direction."""
    summaries = run.summaries.get(set_name, {})
    configs = [c for c in run.configs(set_name) if _peer_columns(summaries[c], kind)]
    if not configs:
        return None
    columns = _peer_columns(summaries[configs[0]], kind)
    rows = []
    for config in configs:
        summary = summaries[config]
        cells = []
        for key, metric, region in columns:
            block = _lookup(summary, key)
            tumour = region == "tumour" or region is None
            if (
                not isinstance(block, dict)
                or block.get("mean") is None
                or (tumour and not segments_tumour(config))
            ):
                cells.append(Cell(None, decimals=2))
                continue
            if region is None:
                values = [
                    (r.get("panoptic") or {}).get(metric.name) for r in summary["metric_per_case"]
                ]
            else:
                values = per_case(summary, region, metric.name)
            ci = stats.bootstrap(values)
            decimals = 2 if metric.unit == "mm" else 3
            cells.append(Cell(block["mean"], ci.low, ci.high, ci.n, decimals))
        rows.append(
            Row(
                MEASURED,
                model_label(config),
                cells,
                run.provenance(set_name),
                _measured_meta(run, set_name, config),
            )
        )
    meta = summaries[configs[0]].get("meta") or {}
    tau = meta.get("nsd_tolerance_mm")
    if kind == "surface":
        what = (
            "HD95, NSD and MASD on 6-neighbourhood surfaces, as MONAI, medpy and "
            "MetricsReloaded" + (f"; NSD tolerance τ = {tau:g} mm" if tau is not None else "")
        )
        title = f"Further metrics on {run.split_label(set_name)}: surface distances"
    else:
        what = "Lesions matched one to one at IoU > 0.5, no merging, as panoptica"
        title = f"Further metrics on {run.split_label(set_name)}: lesion-wise quality"
    notes = [
        "Mean over cases [95% bootstrap interval]; ↑ higher is better, ↓ lower is better (the "
        f"metric registry's direction, as regress gates it). {what}. Definitions and "
        "agreement with those tools: docs/metrics.md. No published row: the paper reports "
        "none of these.",
    ]
    return ReportTable(
        f"peer_{kind}_{set_name}",
        title,
        [(key, _peer_label(metric, region)) for key, metric, region in columns],
        rows,
        notes,
    )


def build_tables(run: RunResults) -> list[ReportTable]:
    """Every table a report shows, in order."""
    out = [table1(run), table2(run), table3(run)]
    out += [paired_table(run, s) for s in ("lits_val", "ircadb")]
    out += [peer_table(run, s, k) for s in ("lits_val", "ircadb") for k in ("surface", "lesion")]
    return [t for t in out if t is not None]
