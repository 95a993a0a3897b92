"""Accumulate case scores over a set: the registry's per-region figures (Dice per case,
global Dice), stats of every per-case metric with undefined counts, tumour burden, summed
lesion counts, lesion-wise panoptic scores (per case and pooled); and the per-case CSV rows
(columns and their types: `columns.py`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from e2net_eval.metrics.burden import BurdenAccumulator
from e2net_eval.metrics.case import CaseScores, ScoredCase
from e2net_eval.metrics.columns import entry_rows
from e2net_eval.metrics.lesions import DetectionCounts
from e2net_eval.metrics.panoptic import PanopticCounts
from e2net_eval.metrics.registry import (
    DETECTION_IOU,
    PANOPTIC_IOU,
    REGIONS,
    case_metrics,
    lesion_metrics,
    region_metrics,
)


def stats(values: list[float]) -> dict[str, float | int]:
    """Mean, std, median, min, max of the defined (finite) values; n and n_undefined.

    An undefined value (NaN) is never dropped silently: it is counted in ``n_undefined``.
    """
    arr = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(arr)
    good = arr[ok]
    nan = math.nan
    return {
        "mean": float(good.mean()) if good.size else nan,
        "std": float(good.std()) if good.size else nan,
        "median": float(np.median(good)) if good.size else nan,
        "min": float(good.min()) if good.size else nan,
        "max": float(good.max()) if good.size else nan,
        "n": int(good.size),
        "n_undefined": int(arr.size - good.size),
    }


@dataclass
class RegionAccumulator:
    """Per-case values of one region plus the sums behind global Dice."""

    values: dict[str, list[float]] = field(
        default_factory=lambda: {m.name: [] for m in case_metrics()}
    )
    sum_intersection: int = 0
    sum_sizes: int = 0

    def add(self, metrics: dict[str, float], intersection: int, pred: int, ref: int) -> None:
        for name in self.values:
            self.values[name].append(float(metrics[name]))
        self.sum_intersection += intersection
        self.sum_sizes += pred + ref

    @property
    def dice_per_case(self) -> float:
        """Mean of the defined per-case Dice values."""
        return stats(self.values["dice"])["mean"]

    @property
    def dice_global(self) -> float:
        """2ΣI/ΣS over the set; 1.0 if every mask of the set is empty (as per-case Dice)."""
        if not self.values["dice"]:
            return math.nan
        return 1.0 if self.sum_sizes == 0 else 2.0 * self.sum_intersection / self.sum_sizes

    def summary(self) -> dict:
        """``regions.<region>``: the per-region figures, then stats of each per-case metric."""
        out: dict = {m.name: m.compute(self) for m in region_metrics()}
        for name, values in self.values.items():
            out[name] = stats(values)
        return out


@dataclass
class PanopticAccumulator:
    """Lesion-wise panoptic scores: each metric per case, and the counts summed over the set
    (the pooled scores of the set, as COCO's PQ)."""

    values: dict[str, list[float]] = field(
        default_factory=lambda: {m.name: [] for m in lesion_metrics()}
    )
    total: PanopticCounts = field(default_factory=PanopticCounts)

    def add(self, counts: PanopticCounts) -> dict[str, float]:
        """Add one case; return its values by metric name."""
        case = {m.name: float(m.compute(counts)) for m in lesion_metrics()}
        for name, value in case.items():
            self.values[name].append(value)
        self.total = self.total + counts
        return case

    def summary(self) -> dict:
        """``panoptic``: matching, summed counts, per-case stats and pooled values."""
        out: dict = {"iou_threshold": PANOPTIC_IOU}
        out.update(tp=self.total.tp, fp=self.total.fp, fn=self.total.fn)
        for name, values in self.values.items():
            out[name] = stats(values)
        out["pooled"] = {m.name: float(m.compute(self.total)) for m in lesion_metrics()}
        return out


@dataclass
class SetAccumulator:
    """Everything `summary.json` and `per_case.csv` need, one case at a time. `peer`: the
    peer metrics are scored and reported (`score_case(peer_metrics=...)`)."""

    peer: bool = True
    regions: dict[str, RegionAccumulator] = field(default_factory=dict)
    burden: BurdenAccumulator = field(default_factory=BurdenAccumulator)
    detection: DetectionCounts = field(default_factory=DetectionCounts)
    detection_any: DetectionCounts = field(default_factory=DetectionCounts)
    lesion_dice: list[float] = field(default_factory=list)
    n_ref_lesions: int = 0
    n_pred_lesions: int = 0
    panoptic: PanopticAccumulator = field(default_factory=PanopticAccumulator)
    per_case: list[dict] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.regions:
            names = [m.name for m in case_metrics(self.peer)]
            self.regions = {r: RegionAccumulator({n: [] for n in names}) for r in REGIONS}

    def add(self, case: ScoredCase) -> None:
        """Add one scored case: its ``metric_per_case`` entry, then its CSV rows made from
        that entry (`columns.entry_rows`)."""
        scores = case.scores
        if self.peer and scores.panoptic is None:
            raise ValueError(f"case {case.case_id}: scored without the peer metrics")
        entry: dict = {"case": case.case_id}
        for region in REGIONS:
            c, acc = scores.regions[region].counts, self.regions[region]
            metrics = {name: scores.regions[region].values[name] for name in acc.values}
            acc.add(metrics, c.intersection, c.pred, c.ref)
            entry[region] = {
                **metrics,
                "ref_voxels": c.ref,
                "pred_voxels": c.pred,
                "intersection": c.intersection,
            }
        entry.update(self._add_lesions(scores))
        entry["missing_prediction"] = case.missing
        if case.reference_sha256 is not None:
            entry["reference_sha256"] = case.reference_sha256
        self.per_case.append(entry)
        ml = scores.voxel_volume_mm3 / 1000.0
        for row in entry_rows(entry, REGIONS, self.peer):
            c = scores.regions[row["region"]].counts
            self.rows.append({**row, "ref_volume_ml": c.ref * ml, "pred_volume_ml": c.pred * ml})
        if case.missing:
            self.missing.append(case.case_id)

    def _add_lesions(self, scores: CaseScores) -> dict:
        """Add a case's tumour burden, lesion detection and panoptic counts to the set;
        return its entry blocks (``tumour_burden``, ``lesions``, ``panoptic``)."""
        les = scores.lesions
        self.burden.add(
            scores.burden_pred, scores.burden_ref, no_liver_predicted=scores.no_liver_predicted
        )
        self.detection += les.at_iou
        self.detection_any += les.any_overlap
        self.lesion_dice.extend(les.lesion_dice)
        self.n_ref_lesions += les.n_ref
        self.n_pred_lesions += les.n_pred
        out: dict = {
            "tumour_burden": {
                "reference": scores.burden_ref,
                "predicted": scores.burden_pred,
                "no_liver_predicted": scores.no_liver_predicted,
            },
            "lesions": {
                "n_ref": les.n_ref,
                "n_pred": les.n_pred,
                **les.at_iou.as_dict(),
                "any_overlap": les.any_overlap.as_dict(),
                "lesion_dice_mean": stats(les.lesion_dice)["mean"],
            },
        }
        if self.peer:
            p = scores.panoptic
            out["panoptic"] = {"tp": p.tp, "fp": p.fp, "fn": p.fn, **self.panoptic.add(p)}
        return out

    def summary(self) -> dict:
        """The set-level part of summary.json (architecture.md "Metrics")."""
        return {
            "n_cases": len(self.per_case),
            "regions": {r: acc.summary() for r, acc in self.regions.items()},
            "tumour_burden": self.burden.summary(),
            "detection": {
                **self.detection.as_dict(),
                "iou_threshold": DETECTION_IOU,
                "n_ref_lesions": self.n_ref_lesions,
                "n_pred_lesions": self.n_pred_lesions,
                "any_overlap": self.detection_any.as_dict(),
                "lesion_dice": stats(self.lesion_dice),
            },
            **({"panoptic": self.panoptic.summary()} if self.peer else {}),
            "missing_predictions": list(self.missing),
            "metric_per_case": self.per_case,
        }
