"""Tables of the metric registry's figures: every metric found in the summaries
(`compare`), and the metrics other tools report (HD95, NSD, MASD; lesion-wise RQ, SQ, PQ).

Directions, units and the list of metrics come from the registry
(`e2net_eval.metrics.registry`): a metric registered there shows up here. Cells are the
summaries' own values in the metric's own unit, with a 95% bootstrap interval.
"""

from __future__ import annotations

from collections.abc import Sequence

from e2net_eval.metrics.registry import METRICS, REGIONS, Metric, case_metrics, lesion_metrics
from e2net_eval.report.entries import Entry
from e2net_eval.report.results import RunResults
from e2net_eval.report.tables import Cell, ReportTable, entry_row, figure_cell

#: How the peer-metric tables name a metric (its registry name otherwise).
_SHORT = {"hd95": "HD95", "hd95_pooled": "HD95 pooled", "nsd": "NSD", "masd": "MASD"}
_SHORT |= {"rq": "RQ", "sq": "SQ", "pq": "PQ", "lesion_dice": "Dice"}
#: Per-region peer metrics left out of the tables (a variant, kept in the summary files).
_PEER_SKIPS = {"hd95_pooled"}


def _unit_arrow(metric: Metric) -> tuple[str, str]:
    return (f" ({metric.unit})" if metric.unit else ""), ("↑" if metric.higher_is_better else "↓")


def metric_label(name: str) -> str:
    """A column label from the registry: name, unit and which way is better."""
    metric = METRICS.get(name)
    if metric is None:
        return name
    unit, arrow = _unit_arrow(metric)
    words = name.replace("_", " ")
    return f"{words}{unit}, |x| {arrow}" if metric.absolute else f"{words}{unit} {arrow}"


def _decimals(metric: Metric | None) -> int:
    """Two decimals for distances (mm), three for fractions (Dice, VOE, F1, burden)."""
    return 2 if metric is not None and metric.unit == "mm" else 3


def _found(
    entries: Sequence[Entry], regions: Sequence[str], levels: Sequence[str], peer: bool
) -> dict[str, tuple[str, str]]:
    """Summary key -> (region, metric name) of every registry metric in the entries'
    summaries (in `regions` and `levels`; peer metrics only with `peer`), ordered by
    region, then registry order; a per-case metric whose mean a region figure already
    is (dice -> dice_per_case) left out."""
    found: dict[str, tuple[str, str]] = {}
    for e in entries:
        t = e.evaluation.table
        columns = (t["region"], t["metric"], t["key"], t["level"])
        for region, name, skey, level in zip(*columns, strict=True):
            metric = METRICS.get(name)
            if metric is None or (metric.peer and not peer):
                continue  # unknown to this version (no direction), or a peer metric
            if region in regions and level in levels:
                found.setdefault(skey, (region, name))
    summarised = {(r, METRICS[n].per_case) for r, n in found.values() if METRICS[n].per_case}
    order = list(METRICS)
    keys = sorted(
        (k for k, v in found.items() if v not in summarised),
        key=lambda k: (list(regions).index(found[k][0]), order.index(found[k][1])),
    )
    return {k: found[k] for k in keys}


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
    summaries (`_found`), in the summary's own unit with its interval. None when there is
    no such metric."""
    found = _found(entries, regions, levels, peer)
    if not found:
        return None
    multi = len(regions) > 1
    columns = [
        (k, f"{region} {metric_label(name)}" if multi else metric_label(name))
        for k, (region, name) in found.items()
    ]
    rows = [
        entry_row(
            e, [figure_cell(e, k, decimals=_decimals(METRICS[n])) for k, (_, n) in found.items()]
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


def _peer_columns(entry: Entry, kind: str) -> list[tuple[str, Metric, str | None]]:
    """(summary key of the stats block, registry entry, region or None for lesion-wise) of
    the peer metrics of `kind` ("surface" or "lesion") the entry holds, registry order."""
    keys = set(entry.evaluation.table["key"])
    if kind == "surface":
        found = [
            (f"regions.{region}.{m.name}", m, region)
            for region in REGIONS
            for m in case_metrics()
            if m.peer and m.name not in _PEER_SKIPS
        ]
    else:
        found = [(f"panoptic.{m.name}", m, None) for m in lesion_metrics()]
    return [c for c in found if c[0] in keys]


def _peer_label(metric: Metric, region: str | None) -> str:
    unit, arrow = _unit_arrow(metric)
    return f"{region or 'lesion'} {_SHORT.get(metric.name, metric.name)}{unit} {arrow}"


def _peer_notes(kind: str, where: str, tau: float | None) -> tuple[str, list[str]]:
    """(title, notes) of a peer table."""
    if kind == "surface":
        what = (
            "HD95, NSD and MASD on 6-neighbourhood surfaces, as MONAI, medpy and "
            "MetricsReloaded" + (f"; NSD tolerance τ = {tau:g} mm" if tau is not None else "")
        )
        title = f"Further metrics on {where}: surface distances"
    else:
        what = "Lesions matched one to one at IoU > 0.5, no merging, as panoptica"
        title = f"Further metrics on {where}: lesion-wise quality"
    return title, [
        "Mean over cases [95% bootstrap interval]; ↑ higher is better, ↓ lower is better (the "
        f"metric registry's direction, as regress gates it). {what}. Definitions and "
        "agreement with those tools: docs/metrics.md. No published row: the paper reports "
        "none of these.",
    ]


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
                cells.append(figure_cell(e, skey, decimals=_decimals(metric)))
        rows.append(entry_row(e, cells))
    title, notes = _peer_notes(kind, where, shown[0].evaluation.meta.get("nsd_tolerance_mm"))
    labels = [(k, _peer_label(metric, region)) for k, metric, region in columns]
    return ReportTable(key, title, labels, rows, notes)


def run_peer_table(run: RunResults, set_name: str, kind: str) -> ReportTable | None:
    """`peer_table` of one set of the run."""
    return peer_table(
        run.entries(set_name), kind, f"peer_{kind}_{set_name}", run.split_label(set_name)
    )
