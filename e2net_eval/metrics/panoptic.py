"""Lesion-wise panoptic scores: recognition, segmentation and panoptic quality, lesion Dice.

Lesions are the 3D components of `lesions`, matched one to one at IoU > 0.5 strictly, with
no merging (unique at that threshold: panoptica's ``NaiveThresholdMatching(IOU, 0.5,
strict_threshold=True)``, COCO's panoptic matching). RQ = TP / (TP + FP/2 + FN/2), SQ =
mean matched IoU, PQ = SQ x RQ, lesion Dice = sum of matched Dice / (TP + FP + FN)
(Kirillov et al., CVPR 2019; BraTS 2023). Empty rules (also for sums over a set) and where
panoptica differs: docs/metrics.md "Lesion-wise panoptic scores".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from e2net_eval.metrics.lesions import LesionOverlaps, lesion_overlaps
from e2net_eval.metrics.registry import LESION_CONNECTIVITY, PANOPTIC_IOU


@dataclass(frozen=True)
class PanopticCounts:
    """Matched pairs, unmatched lesions and the sums of matched IoU and Dice.

    Counts and sums add over cases (``a + b``), so a set-level (pooled) PQ is the PQ of
    the summed counts.
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0
    sum_iou: float = 0.0
    sum_dice: float = 0.0

    def __add__(self, other: PanopticCounts) -> PanopticCounts:
        return PanopticCounts(
            self.tp + other.tp,
            self.fp + other.fp,
            self.fn + other.fn,
            self.sum_iou + other.sum_iou,
            self.sum_dice + other.sum_dice,
        )

    @property
    def _no_lesions(self) -> bool:
        return self.tp + self.fp + self.fn == 0

    @property
    def rq(self) -> float:
        """Recognition quality TP / (TP + FP/2 + FN/2); 1 with no lesion at all."""
        if self._no_lesions:
            return 1.0
        return self.tp / (self.tp + 0.5 * self.fp + 0.5 * self.fn)

    @property
    def sq(self) -> float:
        """Segmentation quality: mean IoU of the matched pairs; NaN with no match."""
        return math.nan if self.tp == 0 else self.sum_iou / self.tp

    @property
    def pq(self) -> float:
        """Panoptic quality sum(IoU) / (TP + FP/2 + FN/2); 1 with no lesion at all."""
        if self._no_lesions:
            return 1.0
        return self.sum_iou / (self.tp + 0.5 * self.fp + 0.5 * self.fn)

    @property
    def lesion_dice(self) -> float:
        """sum(matched Dice) / (TP + FP + FN); 1 with no lesion at all."""
        if self._no_lesions:
            return 1.0
        return self.sum_dice / (self.tp + self.fp + self.fn)


def panoptic_from_overlaps(
    ov: LesionOverlaps, iou_threshold: float = PANOPTIC_IOU
) -> PanopticCounts:
    """Match lesions at IoU > `iou_threshold` (>= 0.5, so the match is unique) and count."""
    if not iou_threshold >= 0.5:
        raise ValueError(f"iou_threshold must be >= 0.5 (one-to-one matching), not {iou_threshold}")
    inter = ov.inter
    sizes = ov.pred_size[:, None] + ov.ref_size[None, :]
    union = sizes - inter
    # IoU > t in exact integer arithmetic at t = 0.5 (2|P∩R| > |P∪R|), in float otherwise
    if iou_threshold == 0.5:
        matched = 2 * inter > union
    else:
        matched = (inter > 0) & (inter > iou_threshold * union)
    tp = int(np.count_nonzero(matched))
    shared = inter[matched].astype(np.float64)
    return PanopticCounts(
        tp=tp,
        fp=ov.n_pred - tp,
        fn=ov.n_ref - tp,
        sum_iou=float(np.sum(shared / union[matched])),
        sum_dice=float(np.sum(2.0 * shared / sizes[matched])),
    )


def panoptic_quality(
    pred: np.ndarray,
    ref: np.ndarray,
    *,
    iou_threshold: float = PANOPTIC_IOU,
    connectivity: int = LESION_CONNECTIVITY,
) -> PanopticCounts:
    """Lesion-wise RQ, SQ, PQ and lesion Dice of two boolean tumour masks (same shape)."""
    return panoptic_from_overlaps(lesion_overlaps(pred, ref, connectivity), iou_threshold)
