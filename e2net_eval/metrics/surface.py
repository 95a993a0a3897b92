"""Surface distances in mm (ASSD, RMSD, MSSD) with anisotropic spacing, computed fast.

A mask's surface is the mask minus its erosion (18-neighbourhood by default, as
``scipy.ndimage.generate_binary_structure(3, 2)``, voxels outside the array count as
background, like medpy). Distances go from every surface voxel of one mask to the nearest
surface voxel of the other, in mm.

Speed: both masks are cropped to the bounding box of their union and padded by one
background voxel. The padding keeps the erosion identical to the full-volume one, and the
crop cannot change a distance because every surface voxel of both masks lies inside it.
The directed distances are computed once per direction and serve all three metrics, by
one of two exact methods chosen by estimated cost:

- ``kdtree``: nearest-neighbour queries of surface voxel centres (in mm) against a k-d tree
  of the other surface (float64, exact); cost grows with the number of surface voxels, so
  it wins for compact objects such as a liver (typically 2-3x faster than the EDT);
- ``edt``: one squared Euclidean distance transform of the other surface's complement
  per direction (``edt.edtsq``, float32, relative error about 1e-7); cost grows with the
  crop volume, so it wins for scattered, noisy masks with huge surfaces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import edt
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from e2net_eval.metrics.registry import DEFAULT_CONNECTIVITY  # 18-neighbourhood

METHODS = ("auto", "kdtree", "edt")
# Measured single-thread costs (seconds): per surface voxel (tree build + query) and per
# crop voxel of one EDT. "auto" picks the cheaper estimate.
_KD_COST_PER_POINT = 8.5e-7
_EDT_COST_PER_VOXEL = 4.5e-8


@dataclass(frozen=True)
class SurfaceDistances:
    """Distances (mm, float64) from each surface voxel of P to S_R and from S_R to S_P.

    ``defined`` is False when exactly one mask is empty: every distance metric is then
    undefined (NaN). Two empty masks are defined and at distance 0.
    """

    pred_to_ref: np.ndarray
    ref_to_pred: np.ndarray
    defined: bool

    @property
    def n_surface(self) -> int:
        return int(self.pred_to_ref.size + self.ref_to_pred.size)

    def assd(self) -> float:
        if not self.defined:
            return math.nan
        if self.n_surface == 0:
            return 0.0
        return float((self.pred_to_ref.sum() + self.ref_to_pred.sum()) / self.n_surface)

    def rmsd(self) -> float:
        if not self.defined:
            return math.nan
        if self.n_surface == 0:
            return 0.0
        a, b = self.pred_to_ref, self.ref_to_pred
        return float(math.sqrt((np.dot(a, a) + np.dot(b, b)) / self.n_surface))

    def mssd(self) -> float:
        if not self.defined:
            return math.nan
        if self.n_surface == 0:
            return 0.0
        return float(max(self.pred_to_ref.max(), self.ref_to_pred.max()))


def bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Slices of the smallest box holding every True voxel of `mask`, or None if empty."""
    if mask.ndim != 3:
        found = ndimage.find_objects(mask.astype(np.uint8))
        return found[0] if found else None
    plane = mask.any(axis=2)  # one pass over the full volume
    xs = np.flatnonzero(plane.any(axis=1))
    if xs.size == 0:
        return None
    ys = np.flatnonzero(plane.any(axis=0))
    sx, sy = slice(xs[0], xs[-1] + 1), slice(ys[0], ys[-1] + 1)
    zs = np.flatnonzero(mask[sx, sy].any(axis=(0, 1)))
    return sx, sy, slice(zs[0], zs[-1] + 1)


def _erode_line(a: np.ndarray, axis: int) -> np.ndarray:
    """Erode with a 3-voxel line along `axis`; the outermost layer (padding) becomes False."""
    out = np.zeros_like(a)
    n = a.shape[axis]

    def sl(start: int, stop: int) -> tuple[slice, ...]:
        index = [slice(None)] * a.ndim
        index[axis] = slice(start, stop)
        return tuple(index)

    np.logical_and(a[sl(0, n - 2)], a[sl(1, n - 1)], out=out[sl(1, n - 1)])
    out[sl(1, n - 1)] &= a[sl(2, n)]
    return out


def erode(mask: np.ndarray, connectivity: int = DEFAULT_CONNECTIVITY) -> np.ndarray:
    """Binary erosion with ``generate_binary_structure(ndim, connectivity)``, border = 0.

    For 3D masks the structuring element is split into line erosions (the 18-neighbourhood
    is the union of the three axis-aligned 3x3 squares), several times faster than scipy.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3 or connectivity not in (1, 2, 3):
        structure = ndimage.generate_binary_structure(mask.ndim, connectivity)
        return ndimage.binary_erosion(mask, structure=structure, border_value=0)
    padded = np.pad(mask, 1)
    ex, ey, ez = (_erode_line(padded, axis) for axis in range(3))
    if connectivity == 1:
        eroded = ex & ey & ez
    elif connectivity == 2:
        eroded = _erode_line(ex, 1) & _erode_line(ex, 2) & _erode_line(ey, 2)
    else:
        eroded = _erode_line(_erode_line(ex, 1), 2)
    return eroded[1:-1, 1:-1, 1:-1]


def surface(mask: np.ndarray, connectivity: int = DEFAULT_CONNECTIVITY) -> np.ndarray:
    """Surface voxels: the mask minus its erosion (same shape, bool)."""
    mask = np.asarray(mask, dtype=bool)
    return mask & ~erode(mask, connectivity)


def surface_distances(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: Sequence[float],
    connectivity: int = DEFAULT_CONNECTIVITY,
    method: str = "auto",
) -> SurfaceDistances:
    """Directed surface distances between two boolean masks of the same shape.

    `spacing` is the voxel size in mm per array axis; `method` is ``auto``, ``kdtree`` or
    ``edt`` (same values, see the module docstring). Empty policy: exactly one mask empty
    -> undefined; both empty -> defined with no surface (all metrics 0).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    pred = np.asarray(pred, dtype=bool)
    ref = np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {ref.shape}")
    if len(spacing) != pred.ndim:
        raise ValueError(f"spacing {tuple(spacing)} does not match {pred.ndim} axes")
    empty = np.zeros(0, dtype=np.float64)
    has_p, has_r = bool(pred.any()), bool(ref.any())
    if not has_p or not has_r:
        return SurfaceDistances(empty, empty, defined=has_p == has_r)
    box = bounding_box(pred | ref)
    assert box is not None
    # Pad by one background voxel: the erosion then sees the same neighbourhood as in the
    # full array (outside the box is background, as is outside the array).
    surf_p = surface(np.pad(pred[box], 1), connectivity)
    surf_r = surface(np.pad(ref[box], 1), connectivity)
    aniso = tuple(float(s) for s in spacing)
    if method == "auto":
        n_points = int(np.count_nonzero(surf_p)) + int(np.count_nonzero(surf_r))
        kd_cost = n_points * _KD_COST_PER_POINT
        edt_cost = 2 * surf_p.size * _EDT_COST_PER_VOXEL
        method = "kdtree" if kd_cost < edt_cost else "edt"
    directed = _directed_kdtree if method == "kdtree" else _directed_edt
    return SurfaceDistances(
        directed(surf_p, surf_r, aniso), directed(surf_r, surf_p, aniso), defined=True
    )


def _directed_edt(src: np.ndarray, dst: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Distance (mm) from every True voxel of `src` to the nearest True voxel of `dst`."""
    if src.ndim == 3:
        sq = edt.edtsq(np.ascontiguousarray(~dst), anisotropy=spacing, black_border=False)
        return np.sqrt(sq[src].astype(np.float64))
    return ndimage.distance_transform_edt(~dst, sampling=spacing)[src]


def _directed_kdtree(src: np.ndarray, dst: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """As `_directed_edt`, by k-d tree queries; voxels of `src` on `dst` are at distance 0."""
    scale = np.asarray(spacing, dtype=np.float64)
    out = np.zeros(int(np.count_nonzero(src)), dtype=np.float64)
    off_dst = src & ~dst
    off = off_dst[src]  # which of src's voxels (in argwhere order) are not on dst
    if off.any():
        tree = cKDTree(np.argwhere(dst) * scale, balanced_tree=False, compact_nodes=False)
        out[off], _ = tree.query(np.argwhere(off_dst) * scale, k=1)
    return out


def assd(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], connectivity: int = 2
) -> float:
    """Average symmetric surface distance in mm; NaN if exactly one mask is empty."""
    return surface_distances(pred, ref, spacing, connectivity).assd()


def rmsd(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], connectivity: int = 2
) -> float:
    """Root mean square symmetric surface distance in mm; NaN if exactly one mask is empty."""
    return surface_distances(pred, ref, spacing, connectivity).rmsd()


def mssd(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], connectivity: int = 2
) -> float:
    """Maximum symmetric surface distance (Hausdorff) in mm; NaN if exactly one mask is empty."""
    return surface_distances(pred, ref, spacing, connectivity).mssd()
