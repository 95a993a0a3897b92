"""Score one case: every region metric, tumour burden, lesion matching and lesion-wise
panoptic scores in one pass.

`score_case` crops both label volumes to the bounding box of everything labelled once,
so the cost scales with the size of the liver, not of the scan. The surface distances of a
region are computed once per neighbourhood (the LiTS 18- and, with the peer metrics, the
6-neighbourhood, sharing what they can) and the lesion components once for detection and
panoptic scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from e2net_eval.data.case import LIVER, TUMOUR
from e2net_eval.metrics.burden import burden_from_counts
from e2net_eval.metrics.lesions import LesionMatch, lesion_overlaps, match_from_overlaps
from e2net_eval.metrics.overlap import OverlapCounts, overlap_counts
from e2net_eval.metrics.panoptic import PanopticCounts, panoptic_from_overlaps
from e2net_eval.metrics.registry import (
    DEFAULT_CONNECTIVITY,
    LESION_CONNECTIVITY,
    NSD_TOLERANCE_MM,
    PEER_CONNECTIVITY,
    REGIONS,
    case_metrics,
)
from e2net_eval.metrics.surface import SurfaceDistances, bounding_box, surface_distances_multi


class RegionInputs:
    """What a per-case metric's `compute` reads: the two boolean masks of one region, the
    spacing, the overlap `counts`, the NSD tolerance and (computed on first use, once, both
    neighbourhoods together when `peer` is on) the `surface` distances of the LiTS
    neighbourhood and the `peer_surface` distances of the 6-neighbourhood."""

    def __init__(
        self,
        pred: np.ndarray,
        ref: np.ndarray,
        spacing: Sequence[float],
        connectivity: int,
        *,
        peer: bool = True,
        nsd_tolerance: float = NSD_TOLERANCE_MM,
    ):
        self.pred, self.ref, self.spacing, self.connectivity = pred, ref, spacing, connectivity
        self.peer, self.nsd_tolerance = peer, nsd_tolerance
        self.counts: OverlapCounts = overlap_counts(pred, ref)
        self._distances: dict[int, SurfaceDistances] = {}

    def _surface_of(self, connectivity: int) -> SurfaceDistances:
        if connectivity not in self._distances:
            wanted = [self.connectivity, PEER_CONNECTIVITY] if self.peer else [connectivity]
            if connectivity not in wanted:
                wanted.append(connectivity)
            self._distances.update(
                surface_distances_multi(self.pred, self.ref, self.spacing, wanted)
            )
        return self._distances[connectivity]

    @property
    def surface(self) -> SurfaceDistances:
        return self._surface_of(self.connectivity)

    @property
    def peer_surface(self) -> SurfaceDistances:
        return self._surface_of(PEER_CONNECTIVITY)


@dataclass
class RegionScores:
    """The per-case metrics of one region of one case (registry order); NaN marks an
    undefined value. ``scores.dice`` reads ``scores.values["dice"]``."""

    counts: OverlapCounts
    values: dict[str, float]

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
    panoptic: PanopticCounts | None = None  # None when the peer metrics are off


@dataclass(frozen=True)
class ScoredCase:
    """One case as `evaluate` scored it: what `SetAccumulator.add` takes. `missing`: scored
    as an empty prediction (no file); `reference_sha256`: `evaluate.reference_digest`."""

    case_id: str
    scores: CaseScores
    missing: bool = False
    reference_sha256: str | None = None


def score_region(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: Sequence[float],
    connectivity: int,
    *,
    peer: bool = True,
    nsd_tolerance: float = NSD_TOLERANCE_MM,
) -> RegionScores:
    """Every per-case metric of the registry for one pair of boolean masks (the peer
    metrics only when `peer`)."""
    inputs = RegionInputs(pred, ref, spacing, connectivity, peer=peer, nsd_tolerance=nsd_tolerance)
    values = {m.name: float(m.compute(inputs)) for m in case_metrics(peer)}
    return RegionScores(counts=inputs.counts, values=values)


def score_case(
    pred_label: np.ndarray,
    ref_label: np.ndarray,
    spacing: Sequence[float],
    *,
    connectivity: int = DEFAULT_CONNECTIVITY,
    lesion_connectivity: int = LESION_CONNECTIVITY,
    peer_metrics: bool = True,
    nsd_tolerance: float = NSD_TOLERANCE_MM,
) -> CaseScores:
    """Score a predicted label volume against the reference (both 0/1/2, same shape).

    Liver = label >= 1, tumour = label == 2. `spacing` in mm per array axis. The peer
    metrics (HD95, pooled HD95, NSD at `nsd_tolerance` mm, MASD, lesion RQ/SQ/PQ/Dice) are
    computed unless `peer_metrics` is False.
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
    regions = {
        r: score_region(
            *masks[r], spacing, connectivity, peer=peer_metrics, nsd_tolerance=nsd_tolerance
        )
        for r in REGIONS
    }
    liver_c, tumour_c = regions["liver"].counts, regions["tumour"].counts
    overlaps = lesion_overlaps(p_tumour, r_tumour, lesion_connectivity)
    return CaseScores(
        regions=regions,
        burden_ref=burden_from_counts(tumour_c.ref, liver_c.ref),
        burden_pred=burden_from_counts(tumour_c.pred, liver_c.pred),
        no_liver_predicted=liver_c.pred == 0,
        lesions=match_from_overlaps(overlaps),
        voxel_volume_mm3=float(math.prod(float(s) for s in spacing)),
        panoptic=panoptic_from_overlaps(overlaps) if peer_metrics else None,
    )
