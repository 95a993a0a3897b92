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
from e2net_eval.metrics.lesions import LESION_CONNECTIVITY, LesionMatch, match_lesions
from e2net_eval.metrics.overlap import (
    OverlapCounts,
    dice_from_counts,
    overlap_counts,
    rvd_from_counts,
    voe_from_counts,
)
from e2net_eval.metrics.surface import DEFAULT_CONNECTIVITY, bounding_box, surface_distances

REGIONS = ("liver", "tumour")
REGION_METRICS = ("dice", "voe", "rvd", "assd", "rmsd", "mssd")


@dataclass
class RegionScores:
    """The metrics of one region of one case; NaN marks an undefined value."""

    counts: OverlapCounts
    dice: float
    voe: float
    rvd: float
    assd: float
    rmsd: float
    mssd: float

    def metrics(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in REGION_METRICS}


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
    """Overlap and surface metrics of one pair of boolean masks."""
    counts = overlap_counts(pred, ref)
    sd = surface_distances(pred, ref, spacing, connectivity)
    return RegionScores(
        counts=counts,
        dice=dice_from_counts(counts),
        voe=voe_from_counts(counts),
        rvd=rvd_from_counts(counts),
        assd=sd.assd(),
        rmsd=sd.rmsd(),
        mssd=sd.mssd(),
    )


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
    regions = {
        "liver": score_region(p_liver, r_liver, spacing, connectivity),
        "tumour": score_region(p_tumour, r_tumour, spacing, connectivity),
    }
    liver_c, tumour_c = regions["liver"].counts, regions["tumour"].counts
    return CaseScores(
        regions=regions,
        burden_ref=burden_from_counts(tumour_c.ref, liver_c.ref),
        burden_pred=burden_from_counts(tumour_c.pred, liver_c.pred),
        no_liver_predicted=liver_c.pred == 0,
        lesions=match_lesions(p_tumour, r_tumour, connectivity=lesion_connectivity),
        voxel_volume_mm3=float(math.prod(float(s) for s in spacing)),
    )
