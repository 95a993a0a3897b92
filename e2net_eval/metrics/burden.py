"""Tumour burden |tumour| / |liver| per case, and its RMSE / largest error over a set."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from e2net_eval.data.case import LIVER, TUMOUR


def tumour_burden(label: np.ndarray) -> float:
    """|label == 2| / |label >= 1| of one label volume; 0.0 when there is no liver."""
    liver = int(np.count_nonzero(label >= LIVER))
    if liver == 0:
        return 0.0
    return int(np.count_nonzero(label == TUMOUR)) / liver


def burden_from_counts(tumour: int, liver: int) -> float:
    """Burden from voxel counts; 0.0 when the liver is empty (protocol.md)."""
    return 0.0 if liver == 0 else tumour / liver


@dataclass
class BurdenAccumulator:
    """Collects (predicted, reference) burdens of a set: RMSE, max |error|, no-liver flags."""

    pred: list[float] = field(default_factory=list)
    ref: list[float] = field(default_factory=list)
    n_no_liver_predicted: int = 0

    def add(self, pred_burden: float, ref_burden: float, *, no_liver_predicted: bool) -> None:
        self.pred.append(float(pred_burden))
        self.ref.append(float(ref_burden))
        self.n_no_liver_predicted += int(no_liver_predicted)

    @property
    def rmse(self) -> float:
        if not self.pred:
            return math.nan
        err = np.asarray(self.pred) - np.asarray(self.ref)
        return float(math.sqrt(float(np.mean(err * err))))

    @property
    def max_abs_error(self) -> float:
        if not self.pred:
            return math.nan
        return float(np.max(np.abs(np.asarray(self.pred) - np.asarray(self.ref))))

    def summary(self) -> dict:
        return {
            "rmse": self.rmse,
            "max_abs_error": self.max_abs_error,
            "n": len(self.pred),
            "n_no_liver_predicted": self.n_no_liver_predicted,
        }
