"""Lesion detection: 3D components, LiTS-style matching, TP / FP / FN that never go negative.

The matching (docs/metrics.md "Lesion detection", steps 1-4 below) follows the LiTS
scorer's intent without its bug: the LiTS code started from the number of merged
predictions and subtracted the merge count of each undetected group, which goes negative
when one prediction bridges two lesions with low overlap. Here TP = reference lesions in
detected groups, FN = the other reference lesions, FP = predicted components not part of
a detected match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cc3d
import numpy as np

from e2net_eval.metrics.registry import DETECTION_IOU, LESION_CONNECTIVITY
from e2net_eval.metrics.surface import bounding_box


@dataclass(frozen=True)
class DetectionCounts:
    """TP / FP / FN lesion counts with precision, recall and F1 (NaN when 0/0)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: DetectionCounts) -> DetectionCounts:
        return DetectionCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


@dataclass
class LesionMatch:
    """Outcome of matching the lesions of one case.

    ``lesion_dice``: one Dice per reference group (merged reference lesions) against its
    merged matched prediction, 0 for a group nothing matched.
    """

    n_ref: int
    n_pred: int
    at_iou: DetectionCounts
    any_overlap: DetectionCounts
    lesion_dice: list[float] = field(default_factory=list)
    group_iou: list[float] = field(default_factory=list)


def _ratio(num: int, den: int) -> float:
    return float("nan") if den == 0 else num / den


def label_components(
    mask: np.ndarray, connectivity: int = LESION_CONNECTIVITY
) -> tuple[np.ndarray, int]:
    """3D connected components of a boolean mask -> (labels uint32 1..n, n)."""
    labels, n = cc3d.connected_components(
        np.ascontiguousarray(mask, dtype=np.uint8), connectivity=connectivity, return_N=True
    )
    return labels, int(n)


@dataclass(frozen=True)
class LesionOverlaps:
    """Components of both tumour masks and their pairwise overlaps (voxel counts).

    ``inter[i, j]`` = voxels shared by predicted component i+1 and reference lesion j+1;
    ``pred_size`` and ``ref_size`` = voxels of each component. Lesion matching and the
    panoptic scores (`e2net_eval.metrics.panoptic`) both read this one table.
    """

    inter: np.ndarray  # (n_pred, n_ref) int64
    pred_size: np.ndarray  # (n_pred,) int64
    ref_size: np.ndarray  # (n_ref,) int64

    @property
    def n_pred(self) -> int:
        return int(self.pred_size.size)

    @property
    def n_ref(self) -> int:
        return int(self.ref_size.size)


def lesion_overlaps(
    pred: np.ndarray, ref: np.ndarray, connectivity: int = LESION_CONNECTIVITY
) -> LesionOverlaps:
    """Label both boolean tumour masks into 3D components and count their overlaps.

    Works on the bounding box of the two masks' union (components cannot leave it).
    """
    pred, ref = np.asarray(pred, dtype=bool), np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {ref.shape}")
    box = bounding_box(np.logical_or(pred, ref))
    if box is None:
        none = np.zeros(0, dtype=np.int64)
        return LesionOverlaps(np.zeros((0, 0), dtype=np.int64), none, none.copy())
    pred, ref = pred[box], ref[box]
    p_lab, n_p = label_components(pred, connectivity)
    r_lab, n_r = label_components(ref, connectivity)
    p_in, r_in = p_lab[pred], r_lab[ref]  # labels of the mask voxels only
    p_size = np.bincount(p_in, minlength=n_p + 1)[1:].astype(np.int64)
    r_size = np.bincount(r_in, minlength=n_r + 1)[1:].astype(np.int64)
    both = np.logical_and(pred, ref)
    pairs = (p_lab[both].astype(np.int64) - 1) * n_r + (r_lab[both].astype(np.int64) - 1)
    inter = np.bincount(pairs, minlength=n_p * n_r).reshape(n_p, n_r)
    return LesionOverlaps(inter.astype(np.int64), p_size, r_size)


def match_lesions(
    pred: np.ndarray,
    ref: np.ndarray,
    *,
    iou_threshold: float = DETECTION_IOU,
    connectivity: int = LESION_CONNECTIVITY,
) -> LesionMatch:
    """Match predicted to reference lesions of one case (boolean tumour masks, same shape)."""
    return match_from_overlaps(lesion_overlaps(pred, ref, connectivity), iou_threshold)


def _reference_groups(
    inter: np.ndarray, r_size: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 2: reference lesions owned by the same prediction form one group -> lesions
    and voxels per group, and the overlap matrix (n_pred, n_groups)."""
    n_p, n_r = inter.shape
    group_of_ref = np.arange(n_r)
    if n_p and n_r:
        owner = np.argmax(inter, axis=0)  # first maximum: lowest label wins ties
        touched = inter.max(axis=0) > 0
        first_of_owner: dict[int, int] = {}
        for j in range(n_r):
            if touched[j]:
                group_of_ref[j] = first_of_owner.setdefault(int(owner[j]), j)
    groups = np.unique(group_of_ref)
    gi = {int(g): k for k, g in enumerate(groups)}
    n_g = len(groups)
    g_index = np.array([gi[int(g)] for g in group_of_ref], dtype=np.int64)
    g_size = np.bincount(g_index, weights=r_size, minlength=n_g).astype(np.int64)
    inter_g = np.zeros((n_p, n_g), dtype=np.int64)
    for j in range(n_r):
        inter_g[:, g_index[j]] += inter[:, j]
    return np.bincount(g_index, minlength=n_g), g_size, inter_g


def match_from_overlaps(ov: LesionOverlaps, iou_threshold: float = DETECTION_IOU) -> LesionMatch:
    """`match_lesions` on an already computed overlap table (the module docstring's steps)."""
    n_p, p_size = ov.n_pred, ov.pred_size
    g_lesions, g_size, inter_g = _reference_groups(ov.inter, ov.ref_size)
    n_g = g_size.size
    # Step 3: each touching prediction joins the group it overlaps most.
    match_of_pred = np.full(n_p, -1, dtype=np.int64)
    if n_g:
        touching = inter_g.max(axis=1) > 0
        match_of_pred[touching] = np.argmax(inter_g[touching], axis=1)
    # Step 4: IoU of each group with its merged prediction.
    at_iou = DetectionCounts()
    any_overlap = DetectionCounts()
    lesion_dice: list[float] = []
    group_iou: list[float] = []
    detected_pred = np.zeros(n_p, dtype=bool)
    for k in range(n_g):
        members = match_of_pred == k
        q_size = int(p_size[members].sum())
        shared = int(inter_g[members, k].sum())
        union = q_size + int(g_size[k]) - shared
        iou = shared / union if union else 0.0
        group_iou.append(iou)
        lesion_dice.append(2.0 * shared / (q_size + int(g_size[k])))
        n_les = int(g_lesions[k])
        if iou > iou_threshold:
            at_iou += DetectionCounts(tp=n_les)
            detected_pred |= members
        else:
            at_iou += DetectionCounts(fn=n_les)
        if shared > 0:
            any_overlap += DetectionCounts(tp=n_les)
        else:
            any_overlap += DetectionCounts(fn=n_les)
    at_iou += DetectionCounts(fp=int(np.count_nonzero(~detected_pred)))
    any_overlap += DetectionCounts(fp=int(np.count_nonzero(match_of_pred < 0)))
    return LesionMatch(
        n_ref=ov.n_ref,
        n_pred=n_p,
        at_iou=at_iou,
        any_overlap=any_overlap,
        lesion_dice=lesion_dice,
        group_iou=group_iou,
    )
