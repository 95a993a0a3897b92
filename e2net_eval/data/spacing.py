"""The one check every reader applies to a voxel spacing before anything is measured with it.

A spacing scales every distance metric, so a wrong one gives a wrong number with exit 0. It
must be finite, within `SPACING_RANGE_MM` (a generous bound: no CT voxel is under a micron
or over a metre; extreme values would overflow or underflow the distance arithmetic), and,
where the file also has an affine, equal to the length of the affine's column for that
axis (to `AFFINE_ATOL`): a NIfTI whose ``pixdim`` says 1 mm under an affine of 5.67 mm
slices is refused, not silently measured in the wrong unit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from e2net_eval.errors import InputError

if TYPE_CHECKING:
    import numpy as np

#: Affines (and a spacing against its affine) must agree to this, in mm; headers written
#: by different tools round differently.
AFFINE_ATOL = 1e-3
#: The smallest and largest voxel size accepted, in mm (1 micron, 1 metre).
SPACING_RANGE_MM = (1e-3, 1e3)


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{float(v):.6g}" for v in values) + ")"


def check_spacing(
    spacing: Sequence[float],
    *,
    affine: np.ndarray | None = None,
    source: str = "spacing",
    case: str | None = None,
    path: str | Path | None = None,
) -> tuple[float, ...]:
    """`spacing` as floats, or an `InputError` naming the file and case (exit 2) when it is
    not finite, outside `SPACING_RANGE_MM`, or (with `affine`) not the affine's column
    lengths. `source` names where the values come from (``pixdim``, ``PixelSpacing``)."""
    sp = tuple(float(v) for v in spacing)
    lo, hi = SPACING_RANGE_MM
    if not all(math.isfinite(v) and lo <= v <= hi for v in sp):
        raise InputError(
            f"voxel spacing {_fmt(sp)} mm from {source} is not a finite size between "
            f"{lo:g} and {hi:g} mm",
            case=case,
            path=path,
        )
    if affine is None:
        return sp
    import numpy as np  # here: `AFFINE_ATOL` is read by light modules (metrics.evaluate)

    a = np.asarray(affine, dtype=np.float64)
    if not np.isfinite(a).all():
        raise InputError("affine holds NaN or infinite values", case=case, path=path)
    norms = np.linalg.norm(a[:3, : len(sp)], axis=0)
    if not np.allclose(norms, sp, rtol=1e-6, atol=AFFINE_ATOL):
        raise InputError(
            f"voxel spacing {_fmt(sp)} mm from {source} disagrees with the affine's "
            f"{_fmt(norms)} mm (tolerance {AFFINE_ATOL:g} mm): which one is right cannot "
            "be told; fix the header",
            case=case,
            path=path,
        )
    return sp
