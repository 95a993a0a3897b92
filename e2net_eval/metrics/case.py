"""Score one case: every region metric, tumour burden and lesion matching in one pass.

`score_case` crops both label volumes to the bounding box of everything labelled once,
so the cost scales with the size of the liver, not of the scan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from e2net_eval.metrics.burden import LIVER, TUMOUR, burden_from_counts
from e2net_eval.metrics.lesions import LesionMatch, match_lesions
from e2net_eval.metrics.overlap import OverlapCounts, overlap_counts
from e2net_eval.metrics.registry import (
    DEFAULT_CONNECTIVITY,
    LESION_CONNECTIVITY,
    REGIONS,
    case_metrics,
)
from e2net_eval.metrics.surface import SurfaceDistances, bounding_box, surface_distances

__all__ = ["REGIONS", "CaseScores", "RegionInputs", "RegionScores", "score_case", "score_region"]


class RegionInputs:
    """What a per-case metric's `compute` reads: the two boolean masks of one region, the
    spacing, the overlap `counts` and (computed on first use, once) the `surface` distances."""

    def __init__(
        self, pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], connectivity: int
    ):
        self.pred, self.ref, self.spacing, self.connectivity = pred, ref, spacing, connectivity
        self.counts: OverlapCounts = overlap_counts(pred, ref)
        self._surface: SurfaceDistances | None = None

    @property
    def surface(self) -> SurfaceDistances:
        if self._surface is None:
            self._surface = surface_distances(self.pred, self.ref, self.spacing, self.connectivity)
        return self._surface


@dataclass
class RegionScores:
    """The per-case metrics of one region of one case (registry order); NaN marks an
    undefined value. ``scores.dice`` reads ``scores.values["dice"]``."""

    counts: OverlapCounts
    values: dict[str, float]

    def metrics(self) -> dict[str, float]:
        return dict(self.values)

    def __getattr__(self, name: str) -> float:
        values = self.__dict__.get("values")
        if values is not None and name in values:
            return values[name]
        raise AttributeError(name)


@dataclass
class CaseScores:
    """All scores of one case (see docs/metrics.md for every definition)."""

    regions: dict[str, RegionScores]
    burden_ref: float
    burden_pred: float
    no_liver_predicted: bool
    lesions: LesionMatch
    voxel_volume_mm3: float

    @property
    def burden_error(self) -> float:
        return self.burden_pred - self.burden_ref


def score_region(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], connectivity: int
) -> RegionScores:
    """Every per-case metric of the registry for one pair of boolean masks."""
    inputs = RegionInputs(pred, ref, spacing, connectivity)
    values = {m.name: float(m.compute(inputs)) for m in case_metrics()}
    return RegionScores(counts=inputs.counts, values=values)


def score_case(
    pred_label: np.ndarray,
    ref_label: np.ndarray,
    spacing: Sequence[float],
    *,
    connectivity: int = DEFAULT_CONNECTIVITY,
    lesion_connectivity: int = LESION_CONNECTIVITY,
) -> CaseScores:
    """Score a predicted label volume against the reference (both 0/1/2, same shape).

    Liver = label >= 1, tumour = label == 2. `spacing` in mm per array axis.
    """
    if pred_label.shape != ref_label.shape:
        raise ValueError(f"label shapes differ: {pred_label.shape} vs {ref_label.shape}")
    box = bounding_box(np.logical_or(pred_label, ref_label))
    if box is None:  # nothing labelled anywhere: one background voxel scores the same
        box = tuple(slice(0, 1) for _ in pred_label.shape)
    p, r = pred_label[box], ref_label[box]
    p_liver, r_liver = p >= LIVER, r >= LIVER
    p_tumour, r_tumour = p == TUMOUR, r == TUMOUR
    masks = {"liver": (p_liver, r_liver), "tumour": (p_tumour, r_tumour)}
    regions = {r: score_region(*masks[r], spacing, connectivity) for r in REGIONS}
    liver_c, tumour_c = regions["liver"].counts, regions["tumour"].counts
    return CaseScores(
        regions=regions,
        burden_ref=burden_from_counts(tumour_c.ref, liver_c.ref),
        burden_pred=burden_from_counts(tumour_c.pred, liver_c.pred),
        no_liver_predicted=liver_c.pred == 0,
        lesions=match_lesions(p_tumour, r_tumour, connectivity=lesion_connectivity),
        voxel_volume_mm3=float(math.prod(float(s) for s in spacing)),
    )
