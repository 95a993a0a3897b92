"""The metric registry: every reported number, once. Case scoring, set accumulation,
`per_case.csv`, the `evaluate` printout, `regress` and the report tables read it.

A `Metric` says how to read a number (direction, unit, definition, empty-mask rule, range,
whether its magnitude is what counts) and, by its `level`, where it comes from: ``"case"``
(per case and region, `compute(RegionInputs)`: a CSV column, a ``metric_per_case`` value
and a stats block ``regions.<region>.<name>``), ``"region"`` (per region and set,
`compute(RegionAccumulator)`), ``"lesion"`` (per case, `compute(PanopticCounts)`, and
pooled over the set: ``panoptic.<name>``, ``panoptic.pooled.<name>``) or ``"set"`` (tumour
burden, lesion detection: accumulated on their own, named here for direction and meaning).
``peer`` marks what `evaluate --no-peer-metrics` leaves out. docs/architecture.md.

The ground floor of `metrics/`: this module imports no other metrics module and no numpy
(a `compute` reads only what it is given), so `regress` reads directions without the
scoring stack. Adding a per-case metric is one `register(Metric(...))` here.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

#: Surface erosion neighbourhood of the LiTS distances (2: 18-neighbourhood, protocol.md).
DEFAULT_CONNECTIVITY = 2
#: Surface neighbourhood of the peer distances (1: 6-neighbourhood, as MONAI, medpy's
#: default, MetricsReloaded and panoptica).
PEER_CONNECTIVITY = 1
#: Tolerance of the normalised surface distance (NSD) in mm, `evaluate --nsd-tolerance`.
NSD_TOLERANCE_MM = 2.0
#: HD95's percentile.
HD_PERCENTILE = 95.0
#: Voxel connectivity of lesions (6, 18 or 26).
LESION_CONNECTIVITY = 6
#: A lesion is detected when IoU(merged prediction, reference group) is above this.
DETECTION_IOU = 0.5
#: Lesions match one to one for RQ / SQ / PQ when their IoU is above this (no merging).
PANOPTIC_IOU = 0.5
#: Regions scored in every case: liver = label >= 1, tumour = label == 2.
REGIONS = ("liver", "tumour")
LEVELS = ("case", "region", "lesion", "set")
#: summary.json blocks of set-level figures (besides ``regions``), in output order.
SET_SECTIONS = ("tumour_burden", "detection", "panoptic")


@dataclass(frozen=True)
class Metric:
    """How to compute and read one metric (see the module docstring for `level`).

    display: (header, width, decimals) of its column in `evaluate`'s printed table, or None.
    interval: how a report resamples cases for a bootstrap interval of the set figure:
    ``"mean"`` (mean of the per-case values of metric `per_case` in the same region),
    ``"global_dice"`` (global Dice from per-case counts), ``"rmse_burden"`` (RMSE of the
    per-case tumour-burden errors), or None.
    bounds: (low, high), the closed range of every defined value (per case and for the
    set); `compare` and the readers of `e2net_eval.scores` refuse a value outside it, and
    infinity always. `FRACTION` for scores and fractions, `DISTANCE` for distances;
    unbounded by default.
    """

    name: str
    higher_is_better: bool
    unit: str
    description: str
    empty: str = ""
    level: str = "set"
    compute: Callable[[Any], float] | None = None
    csv: str | None = None
    absolute: bool = False
    display: tuple[str, int, int] | None = None
    interval: str | None = None
    per_case: str | None = None
    peer: bool = False
    bounds: tuple[float, float] = (-math.inf, math.inf)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"metric {self.name}: level must be one of {LEVELS}")
        if not self.bounds[0] < self.bounds[1]:
            raise ValueError(f"metric {self.name}: bounds must be (low, high), low < high")
        if self.level in ("case", "region", "lesion") and self.compute is None:
            raise ValueError(f"metric {self.name}: a {self.level}-level metric needs compute")
        if self.level in ("case", "lesion") and self.csv is None:
            object.__setattr__(self, "csv", self.name)


METRICS: dict[str, Metric] = {}
#: Bounds of a distance in mm.
DISTANCE = (0.0, math.inf)
#: Bounds of a score or a fraction.
FRACTION = (0.0, 1.0)
#: Rounding a value may carry past its bound (a mean of values that are all 1.0).
_BOUNDS_SLACK = 1e-9


def out_of_range(metric: Metric, value: float) -> str | None:
    """Why `value` cannot be a value of `metric` (not finite, outside its bounds), or None."""
    low, high = metric.bounds
    if not math.isfinite(value):
        return f"{metric.name} is {value}, not a finite number"
    if not low - _BOUNDS_SLACK <= value <= high + _BOUNDS_SLACK:
        return f"{metric.name} is {value!r}, outside its range [{low:g}, {high:g}]"
    return None


def register(metric: Metric) -> Metric:
    """Add a metric (names are unique)."""
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


@contextlib.contextmanager
def registered(*metrics: Metric) -> Iterator[None]:
    """Register metrics for the duration of a `with` block (tests, experiments)."""
    added = []
    try:
        for m in metrics:
            added.append(register(m).name)
        yield
    finally:
        for name in added:
            METRICS.pop(name, None)


def case_metrics(peer: bool = True) -> list[Metric]:
    """Per-case, per-region metrics in registry order (CSV and summary order); without the
    peer metrics when `peer` is False."""
    return [m for m in METRICS.values() if m.level == "case" and (peer or not m.peer)]


def lesion_metrics(peer: bool = True) -> list[Metric]:
    """Per-case lesion-wise (panoptic) metrics in registry order; none without `peer`."""
    return [m for m in METRICS.values() if m.level == "lesion" and (peer or not m.peer)]


def region_metrics() -> list[Metric]:
    """Per-region set figures (Dice per case, global Dice) in registry order."""
    return [m for m in METRICS.values() if m.level == "region"]


def display_metrics() -> list[Metric]:
    """Metrics shown in `evaluate`'s printed table, in registry order."""
    return [m for m in METRICS.values() if m.display is not None]


def registry_names(key: str) -> list[str]:
    """Registry names to try for a flattened summary key, most specific first:
    `liver.dice_per_case` -> [`dice_per_case`]; `tumour_burden.rmse` -> [`tumour_burden_rmse`,
    `rmse`]; `detection.any_overlap.f1` -> [`detection_any_overlap_f1`, `f1`];
    `detection.lesion_dice` -> [`detection_lesion_dice`, `lesion_dice`]. A leading
    ``regions.`` and a ``RUN/...`` prefix are ignored."""
    parts = key.rsplit("/", 1)[-1].split(".")
    if parts[0] == "regions":
        parts = parts[1:]
    if parts[0] in SET_SECTIONS:
        return ["_".join(parts), parts[-1]]
    return [parts[-1]]


def metric_for(key: str) -> Metric | None:
    """The registry entry of a flattened summary key, or None when none is known."""
    for name in registry_names(key):
        if name in METRICS:
            return METRICS[name]
    return None


def _distance(name: str, description: str, compute: Callable[[Any], float], **kw: Any) -> Metric:
    """A per-case surface distance in mm: lower is better, undefined when one mask is empty."""
    return Metric(
        name,
        False,
        "mm",
        description,
        empty=_SURFACE_EMPTY,
        level="case",
        compute=compute,
        bounds=DISTANCE,
        **kw,
    )


_BOTH_EMPTY = "both empty: 0.0; "
_SURFACE_EMPTY = "undefined (null) when exactly one mask is empty; " + _BOTH_EMPTY.rstrip("; ")
_PEER_SURFACE = "6-neighbourhood surfaces"

# -- the registry: order = CSV columns, summary blocks and printed columns ----------------
register(
    Metric(
        "dice",
        True,
        "",
        "Dice 2|P∩R|/(|P|+|R|) per case; 1 if both empty, 0 if one is",
        empty="both empty: 1.0; one empty: 0.0",
        level="case",
        compute=lambda r: r.counts.dice,
        bounds=FRACTION,
    )
)
register(
    Metric(
        "dice_per_case",
        True,
        "",
        "mean over cases of the per-case Dice",
        empty="mean of the defined per-case values",
        level="region",
        compute=lambda acc: acc.dice_per_case,
        display=("dice/case", 9, 4),
        interval="mean",
        per_case="dice",
        bounds=FRACTION,
    )
)
register(
    Metric(
        "dice_global",
        True,
        "",
        "global Dice 2ΣI/ΣS, I and S summed over the set",
        empty="1.0 when every mask of the set is empty",
        level="region",
        compute=lambda acc: acc.dice_global,
        display=("dice glob", 9, 4),
        interval="global_dice",
        bounds=FRACTION,
    )
)
register(
    Metric(
        "voe",
        False,
        "",
        "volumetric overlap error 1 - |P∩R|/|P∪R|",
        empty="both empty: 0.0; one empty: 1.0",
        level="case",
        compute=lambda r: r.counts.voe,
        display=("voe", 7, 4),
        bounds=FRACTION,
    )
)
register(
    Metric(
        "rvd",
        False,
        "",
        "relative volume difference (|P|-|R|)/|R| (LiTS paper sign); smaller |RVD| is better",
        empty="both empty: 0.0; reference empty: undefined; prediction empty: -1.0",
        level="case",
        compute=lambda r: r.counts.rvd,
        absolute=True,
        bounds=(-1.0, math.inf),
        display=("rvd", 8, 4),
    )
)
for _name, _text, _compute in (
    ("assd", "average symmetric surface distance", lambda r: r.surface.assd()),
    ("rmsd", "root mean square symmetric surface distance", lambda r: r.surface.rmsd()),
    ("mssd", "maximum symmetric surface distance (Hausdorff)", lambda r: r.surface.mssd()),
):
    register(_distance(_name, _text, _compute, display=(f"{_name} mm", 8, 2)))
register(
    _distance(
        "hd95",
        "95th-percentile Hausdorff distance: the larger of the two directed 95th percentiles "
        f"(linear interpolation), {_PEER_SURFACE}; MONAI, MetricsReloaded hd_perc",
        lambda r: r.peer_surface.hd_percentile(HD_PERCENTILE),
        display=("hd95 mm", 8, 2),
        peer=True,
    )
)
register(
    _distance(
        "hd95_pooled",
        f"95th percentile of both directed distance sets pooled, {_PEER_SURFACE}; medpy hd95",
        lambda r: r.peer_surface.hd_percentile_pooled(HD_PERCENTILE),
        peer=True,
    )
)
register(
    Metric(
        "nsd",
        True,
        "",
        "normalised surface distance (surface Dice): fraction of both surfaces' voxels "
        f"within the tolerance (meta.nsd_tolerance_mm) of the other, {_PEER_SURFACE}; "
        "MONAI compute_surface_dice",
        empty="both empty: 1.0; one empty: 0.0",
        level="case",
        compute=lambda r: r.peer_surface.nsd(r.nsd_tolerance),
        display=("nsd", 6, 4),
        peer=True,
        bounds=FRACTION,
    )
)
register(
    _distance(
        "masd",
        "mean of the two directed mean surface distances, "
        f"{_PEER_SURFACE}; MetricsReloaded masd, medpy < 0.5 assd",
        lambda r: r.peer_surface.masd(),
        peer=True,
    )
)
register(
    Metric(
        "tumour_burden_rmse",
        False,
        "",
        "RMSE over cases of tumour burden |tumour|/|liver|, predicted vs reference",
        empty="burden 0 for a volume without liver (flagged)",
        interval="rmse_burden",
        bounds=FRACTION,
    )
)
register(
    Metric(
        "tumour_burden_max_abs_error",
        False,
        "",
        "largest absolute tumour-burden error over the set",
        bounds=FRACTION,
    )
)
_DETECTION_EMPTY = "undefined (null) when the denominator is 0"
for _prefix, _how in (("detection", "IoU > 0.5"), ("detection_any_overlap", "any overlap")):
    for _name, _formula in (
        ("precision", "TP/(TP+FP)"),
        ("recall", "TP/(TP+FN)"),
        ("f1", "2TP/(2TP+FP+FN)"),
    ):
        register(
            Metric(
                f"{_prefix}_{_name}",
                True,
                "",
                f"lesion detection {_name} {_formula}, {_how}",
                empty=_DETECTION_EMPTY,
                bounds=FRACTION,
            )
        )
register(
    Metric(
        "detection_lesion_dice",
        True,
        "",
        "mean Dice of each (merged) reference lesion with its matched prediction "
        "(summary key detection.lesion_dice)",
        empty="0 for a reference lesion nothing matched; undefined without reference lesions",
        bounds=FRACTION,
    )
)
_PANOPTIC_HOW = "lesions matched one to one at IoU > 0.5 (no merging), as panoptica"
_PANOPTIC_NONE = "no lesion in either mask: 1.0; lesions but no match: 0.0"
for _name, _better, _text, _empty in (
    ("rq", True, "recognition quality TP/(TP + FP/2 + FN/2)", _PANOPTIC_NONE),
    (
        "sq",
        True,
        "segmentation quality: mean IoU of the matched lesions",
        "undefined (null) when no lesion matched",
    ),
    ("pq", True, "panoptic quality: sum of matched IoU/(TP + FP/2 + FN/2)", _PANOPTIC_NONE),
    (
        "lesion_dice",
        True,
        "lesion-wise Dice (BraTS 2023): sum of matched Dice/(TP + FP + FN)",
        _PANOPTIC_NONE,
    ),
):
    register(
        Metric(
            _name,
            _better,
            "",
            f"{_text}; {_PANOPTIC_HOW}",
            empty=_empty,
            level="lesion",
            compute=attrgetter(_name),
            peer=True,
            bounds=FRACTION,
        )
    )
