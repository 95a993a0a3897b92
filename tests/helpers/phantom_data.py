"""Constants and helpers shared by the data tests."""

from __future__ import annotations

import nibabel as nib
import numpy as np

SEED = 7
SIZE = 64
SLICES = (12, 16)
N_LITS = 8


def canonical(array: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """`array` in RAS axis order (the documented mapping between array orders)."""
    return nib.orientations.apply_orientation(array, nib.orientations.io_orientation(affine))
