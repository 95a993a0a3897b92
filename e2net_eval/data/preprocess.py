"""Intensity pre-processing of the paper (section 3): the HU window and its scaling."""

from __future__ import annotations

import numpy as np

HU_MIN, HU_MAX = -100.0, 240.0


def window_hu(image: np.ndarray, lo: float = HU_MIN, hi: float = HU_MAX) -> np.ndarray:
    """Clip HU to [lo, hi] (paper: [-100, 240]) and scale linearly to [-1, 1]; float32, same shape."""
    out = np.asarray(image).astype(np.float32)  # always a new array: the input is untouched
    np.clip(out, lo, hi, out=out)
    out -= np.float32((lo + hi) / 2)
    out *= np.float32(2.0 / (hi - lo))
    return out
