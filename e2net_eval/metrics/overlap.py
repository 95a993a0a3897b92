"""Volume-overlap metrics on boolean masks: Dice, VOE, RVD (protocol.md "Scores").

Empty masks follow the LiTS rule for Dice (1 when both are empty, 0 when exactly one is);
VOE mirrors it (0 / 1). RVD = (|P| - |R|) / |R| is undefined (NaN) when only the reference
is empty and 0 when both are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OverlapCounts:
    """Voxel counts of one pair of masks: |P|, |R|, |P∩R|."""

    pred: int
    ref: int
    intersection: int

    @property
    def union(self) -> int:
        return self.pred + self.ref - self.intersection

    # what the registry's overlap metrics read (it imports no scoring module)
    dice = property(lambda self: dice_from_counts(self))
    voe = property(lambda self: voe_from_counts(self))
    rvd = property(lambda self: rvd_from_counts(self))


def overlap_counts(pred: np.ndarray, ref: np.ndarray) -> OverlapCounts:
    """Count |P|, |R| and |P∩R| of two boolean masks of the same shape."""
    _check_pair(pred, ref)
    return OverlapCounts(
        pred=int(np.count_nonzero(pred)),
        ref=int(np.count_nonzero(ref)),
        intersection=int(np.count_nonzero(np.logical_and(pred, ref))),
    )


def dice_from_counts(c: OverlapCounts) -> float:
    total = c.pred + c.ref
    return 1.0 if total == 0 else 2.0 * c.intersection / total


def voe_from_counts(c: OverlapCounts) -> float:
    union = c.union
    return 0.0 if union == 0 else 1.0 - c.intersection / union


def rvd_from_counts(c: OverlapCounts) -> float:
    if c.ref == 0:
        return 0.0 if c.pred == 0 else float("nan")
    return (c.pred - c.ref) / c.ref


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice 2|P∩R|/(|P|+|R|); 1.0 when both masks are empty, 0.0 when exactly one is."""
    return dice_from_counts(overlap_counts(pred, ref))


def voe(pred: np.ndarray, ref: np.ndarray) -> float:
    """Volumetric overlap error 1 - |P∩R|/|P∪R|; 0.0 when both masks are empty."""
    return voe_from_counts(overlap_counts(pred, ref))


def rvd(pred: np.ndarray, ref: np.ndarray) -> float:
    """Relative volume difference (|P| - |R|)/|R| (LiTS paper sign: over-segmentation > 0).

    NaN (undefined) when the reference is empty and the prediction is not; 0.0 when both are.
    The LiTS scoring code computed medpy ``ravd(reference, prediction)`` = (|R|-|P|)/|P|,
    the opposite sign with the prediction as denominator.
    """
    return rvd_from_counts(overlap_counts(pred, ref))


def _check_pair(pred: np.ndarray, ref: np.ndarray) -> None:
    if pred.shape != ref.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {ref.shape}")
