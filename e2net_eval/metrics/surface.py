"""Surface distances in mm with anisotropic spacing, computed once per direction, fast.

A mask's surface is the mask minus its erosion (outside the array is background): the
18-neighbourhood for the LiTS set (``DEFAULT_CONNECTIVITY``), the 6-neighbourhood for the
peer metrics (``PEER_CONNECTIVITY``). Definitions, empty-mask rules and the crop that keeps
it fast: docs/metrics.md, "Surfaces and distances" and "Accuracy and speed".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from e2net_eval.metrics.nearest import nearest_edt, nearest_kdtree, nearest_scan, scan_margin
from e2net_eval.metrics.registry import (
    DEFAULT_CONNECTIVITY,  # 18-neighbourhood: the LiTS set
    HD_PERCENTILE,
    NSD_TOLERANCE_MM,
    PEER_CONNECTIVITY,  # 6-neighbourhood: HD95, NSD, MASD, as MONAI / medpy / panoptica
)

# A distance within this relative margin of the NSD tolerance counts as equal to it: the
# EDT computes in float32, and a tie in exact arithmetic must not depend on the method.
NSD_TIE_RTOL = 1e-6
METHODS = ("auto", "scan", "kdtree", "edt")
# Measured single-thread costs (seconds): per surface voxel (tree build + query) and per
# crop voxel of one EDT. "auto" takes the EDT when it is the cheaper estimate, else the
# scan (never much slower than the tree, usually several times faster).
_KD_COST_PER_POINT = 8.5e-7
_EDT_COST_PER_VOXEL = 4.5e-8
Mask = np.ndarray  # boolean, one shape for both masks of a pair
Spacing = Sequence[float]  # mm per array axis


@dataclass(frozen=True)
class SurfaceDistances:
    """Distances (mm, float64) from each surface voxel of P to S_R and from S_R to S_P.

    ``defined`` is False when exactly one mask is empty: every distance metric is then
    undefined (NaN) and NSD is 0. Two empty masks are defined, at distance 0, NSD 1.
    """

    pred_to_ref: np.ndarray
    ref_to_pred: np.ndarray
    defined: bool

    @property
    def n_surface(self) -> int:
        return int(self.pred_to_ref.size + self.ref_to_pred.size)

    def _empty_value(self) -> float | None:
        """NaN (undefined) or 0.0 (both empty) when a distance metric has no data, else None."""
        if not self.defined:
            return math.nan
        return 0.0 if self.n_surface == 0 else None

    def assd(self) -> float:
        """Pooled mean of both directed sets (the LiTS ASSD, medpy >= 0.5 ``assd``)."""
        if (empty := self._empty_value()) is not None:
            return empty
        return float((self.pred_to_ref.sum() + self.ref_to_pred.sum()) / self.n_surface)

    def rmsd(self) -> float:
        if (empty := self._empty_value()) is not None:
            return empty
        a, b = self.pred_to_ref, self.ref_to_pred
        return float(math.sqrt((np.dot(a, a) + np.dot(b, b)) / self.n_surface))

    def mssd(self) -> float:
        if (empty := self._empty_value()) is not None:
            return empty
        return float(max(self.pred_to_ref.max(), self.ref_to_pred.max()))

    def masd(self) -> float:
        """Mean of the two directed means (MetricsReloaded MASD)."""
        if (empty := self._empty_value()) is not None:
            return empty
        return float(0.5 * (self.pred_to_ref.mean() + self.ref_to_pred.mean()))

    def hd_percentile(self, q: float = HD_PERCENTILE) -> float:
        """Larger of the two directed q-th percentiles (linear interpolation): HD95 at 95."""
        if (empty := self._empty_value()) is not None:
            return empty
        return float(max(np.percentile(self.pred_to_ref, q), np.percentile(self.ref_to_pred, q)))

    def hd_percentile_pooled(self, q: float = HD_PERCENTILE) -> float:
        """q-th percentile of both directed sets pooled together (medpy ``hd95``)."""
        if (empty := self._empty_value()) is not None:
            return empty
        return float(np.percentile(np.concatenate([self.pred_to_ref, self.ref_to_pred]), q))

    def nsd(self, tolerance_mm: float = NSD_TOLERANCE_MM) -> float:
        """Fraction of both surfaces' voxels within `tolerance_mm` of the other surface."""
        if not (math.isfinite(tolerance_mm) and tolerance_mm >= 0):
            raise ValueError(f"NSD tolerance must be finite and >= 0, not {tolerance_mm}")
        if not self.defined:
            return 0.0
        if self.n_surface == 0:
            return 1.0
        limit = tolerance_mm * (1.0 + NSD_TIE_RTOL)
        within = np.count_nonzero(self.pred_to_ref <= limit)
        within += np.count_nonzero(self.ref_to_pred <= limit)
        return float(within / self.n_surface)


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


def _erosions(mask: np.ndarray, connectivities: Iterable[int]) -> dict[int, np.ndarray]:
    """Binary erosions with ``generate_binary_structure(ndim, c)`` for each c, border = 0.

    For 3D masks the structuring elements are split into line erosions shared by all
    neighbourhoods (the 6-neighbourhood is the intersection of the three axis lines, the
    18-neighbourhood the union of the three axis-aligned 3x3 squares), several times
    faster than scipy.
    """
    mask = np.asarray(mask, dtype=bool)
    conns = list(dict.fromkeys(int(c) for c in connectivities))
    if mask.ndim != 3 or any(c not in (1, 2, 3) for c in conns):
        return {
            c: ndimage.binary_erosion(
                mask, structure=ndimage.generate_binary_structure(mask.ndim, c), border_value=0
            )
            for c in conns
        }
    padded = np.pad(mask, 1)
    ex, ey, ez = (_erode_line(padded, axis) for axis in range(3))
    out = {}
    for c in conns:
        if c == 1:
            eroded = ex & ey & ez
        elif c == 2:
            eroded = _erode_line(ex, 1) & _erode_line(ex, 2) & _erode_line(ey, 2)
        else:
            eroded = _erode_line(_erode_line(ex, 1), 2)
        out[c] = eroded[1:-1, 1:-1, 1:-1]
    return out


def erode(mask: np.ndarray, connectivity: int = DEFAULT_CONNECTIVITY) -> np.ndarray:
    """Binary erosion with ``generate_binary_structure(ndim, connectivity)``, border = 0."""
    return _erosions(mask, (connectivity,))[connectivity]


def surface(mask: np.ndarray, connectivity: int = DEFAULT_CONNECTIVITY) -> np.ndarray:
    """Surface voxels: the mask minus its erosion (same shape, bool)."""
    mask = np.asarray(mask, dtype=bool)
    return mask & ~erode(mask, connectivity)


def surface_distances(
    pred: Mask,
    ref: Mask,
    spacing: Spacing,
    connectivity: int = DEFAULT_CONNECTIVITY,
    method: str = "auto",
) -> SurfaceDistances:
    """Directed surface distances between two boolean masks of the same shape.

    `spacing` is the voxel size in mm per array axis; `method` is ``auto``, ``scan``,
    ``kdtree`` or ``edt`` (same values; `e2net_eval.metrics.nearest`). Empty policy:
    exactly one mask empty -> undefined; both empty -> defined with no surface.
    """
    return surface_distances_multi(pred, ref, spacing, (connectivity,), method)[connectivity]


def _padded_crop(mask: np.ndarray, box: tuple[slice, ...], margin: Sequence[int]) -> np.ndarray:
    """`mask[box]` inside `margin` background voxels per side (C order, one copy)."""
    inner = tuple(b.stop - b.start for b in box)
    out = np.zeros(tuple(n + 2 * m for n, m in zip(inner, margin, strict=True)), dtype=bool)
    out[tuple(slice(m, m + n) for n, m in zip(inner, margin, strict=True))] = mask[box]
    return out


def surface_distances_multi(
    pred: Mask,
    ref: Mask,
    spacing: Spacing,
    connectivities: Iterable[int],
    method: str = "auto",
) -> dict[int, SurfaceDistances]:
    """`surface_distances` for several neighbourhoods at once.

    The neighbourhoods share the crop, the line erosions and every distance that cannot
    differ between them: for a surface voxel x of P outside R, the nearest voxel of R lies
    on R's 6-neighbourhood surface (a step from an interior voxel towards x stays in R and
    comes closer), and the 6-surface lies inside every other surface, so
    d(x, S_R) = d(x, R) whatever the neighbourhood. Only voxels inside the other mask are
    measured again for the second neighbourhood.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    pred = np.asarray(pred, dtype=bool)
    ref = np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {ref.shape}")
    if len(spacing) != pred.ndim:
        raise ValueError(f"spacing {tuple(spacing)} does not match {pred.ndim} axes")
    conns = list(dict.fromkeys(int(c) for c in connectivities))
    empty = np.zeros(0, dtype=np.float64)
    has_p, has_r = bool(pred.any()), bool(ref.any())
    if not has_p or not has_r:
        return {c: SurfaceDistances(empty, empty, defined=has_p == has_r) for c in conns}
    box = bounding_box(pred | ref)
    assert box is not None
    aniso = tuple(float(s) for s in spacing)
    # At least one background voxel around the box keeps the erosion identical to the
    # full-array one (outside the box is background, as outside the array is); the scan
    # needs its offsets' reach.
    margin = [max(1, h) for h in scan_margin(aniso)]
    crop_p, crop_r = _padded_crop(pred, box, margin), _padded_crop(ref, box, margin)
    eroded_p, eroded_r = _erosions(crop_p, conns), _erosions(crop_r, conns)
    in_p, in_r = crop_p.reshape(-1), crop_r.reshape(-1)
    out: dict[int, SurfaceDistances] = {}
    earlier: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    for conn in conns:
        sp_ = crop_p & ~eroded_p[conn]
        sr_ = crop_r & ~eroded_r[conn]
        ip, ir = np.flatnonzero(sp_), np.flatnonzero(sr_)
        chosen = method
        if chosen == "auto":
            kd_cost = (ip.size + ir.size) * _KD_COST_PER_POINT
            edt_cost = 2 * sp_.size * _EDT_COST_PER_VOXEL
            chosen = "scan" if kd_cost < edt_cost else "edt"
        prev_pr, prev_rp = earlier if earlier and chosen != "edt" else (None, None)
        d_pr = _directed(chosen, ip, sr_, ir, aniso, ~in_r[ip], prev_pr)
        d_rp = _directed(chosen, ir, sp_, ip, aniso, ~in_p[ir], prev_rp)
        out[conn] = SurfaceDistances(d_pr, d_rp, defined=True)
        if earlier is None:
            earlier = ((ip, d_pr), (ir, d_rp))
    return out


def _directed(
    method: str,
    src: np.ndarray,
    dst_mask: np.ndarray,
    dst: np.ndarray,
    spacing: tuple[float, ...],
    outside: np.ndarray,
    earlier: tuple[np.ndarray, np.ndarray] | None,
) -> np.ndarray:
    """Distances from flat indices `src` to `dst_mask`; reuse `earlier` (flat indices and
    their distances, same direction, another neighbourhood) where `outside` allows."""
    todo = np.arange(src.size)
    out = np.empty(src.size, dtype=np.float64)
    if earlier is not None and earlier[0].size:
        idx, dist = earlier
        pos = np.minimum(np.searchsorted(idx, src), idx.size - 1)
        known = outside & (idx[pos] == src)
        out[known] = dist[pos[known]]
        todo = np.flatnonzero(~known)
    if todo.size:
        q = src[todo]
        if method == "scan":
            out[todo] = nearest_scan(q, dst_mask, dst, spacing)
        elif method == "edt":
            out[todo] = nearest_edt(q, dst_mask, spacing)
        else:
            on = dst_mask.reshape(-1)[q]
            out[todo[on]] = 0.0
            if not on.all():
                out[todo[~on]] = nearest_kdtree(q[~on], dst, dst_mask.shape, spacing)
    return out


def assd(pred: Mask, ref: Mask, spacing: Spacing, connectivity: int = 2) -> float:
    """Average symmetric surface distance in mm; NaN if exactly one mask is empty."""
    return surface_distances(pred, ref, spacing, connectivity).assd()


def rmsd(pred: Mask, ref: Mask, spacing: Spacing, connectivity: int = 2) -> float:
    """Root mean square symmetric surface distance in mm; NaN if exactly one mask is empty."""
    return surface_distances(pred, ref, spacing, connectivity).rmsd()


def mssd(pred: Mask, ref: Mask, spacing: Spacing, connectivity: int = 2) -> float:
    """Maximum symmetric surface distance (Hausdorff) in mm; NaN if exactly one mask is empty."""
    return surface_distances(pred, ref, spacing, connectivity).mssd()


def masd(pred: Mask, ref: Mask, spacing: Spacing, connectivity: int = PEER_CONNECTIVITY) -> float:
    """Mean of the two directed mean surface distances in mm (MASD, MetricsReloaded).

    6-neighbourhood by default. NaN if exactly one mask is empty, 0 if both are.
    """
    return surface_distances(pred, ref, spacing, connectivity).masd()


def hd95(
    pred: Mask,
    ref: Mask,
    spacing: Spacing,
    connectivity: int = PEER_CONNECTIVITY,
    percentile: float = HD_PERCENTILE,
) -> float:
    """95th-percentile Hausdorff distance in mm: the larger of the two directed percentiles.

    As MONAI ``compute_hausdorff_distance(percentile=95)`` and MetricsReloaded ``hd_perc``;
    6-neighbourhood by default. NaN if exactly one mask is empty, 0 if both are.
    """
    return surface_distances(pred, ref, spacing, connectivity).hd_percentile(percentile)


def hd95_pooled(
    pred: Mask,
    ref: Mask,
    spacing: Spacing,
    connectivity: int = PEER_CONNECTIVITY,
    percentile: float = HD_PERCENTILE,
) -> float:
    """95th percentile of both directed distance sets pooled, in mm (medpy ``hd95``).

    6-neighbourhood by default. NaN if exactly one mask is empty, 0 if both are.
    """
    return surface_distances(pred, ref, spacing, connectivity).hd_percentile_pooled(percentile)


def nsd(
    pred: Mask,
    ref: Mask,
    spacing: Spacing,
    tolerance_mm: float = NSD_TOLERANCE_MM,
    connectivity: int = PEER_CONNECTIVITY,
) -> float:
    """Normalised surface distance (surface Dice) at `tolerance_mm`, in [0, 1].

    (|{x in S_P: d(x, S_R) <= tau}| + |{y in S_R: d(y, S_P) <= tau}|) / (|S_P| + |S_R|),
    surface voxels counted, as MONAI ``compute_surface_dice``; DeepMind's ``surface-distance``
    weights surface elements on the voxel-corner grid by area instead (docs/metrics.md).
    6-neighbourhood by default. 0 if exactly one mask is empty, 1 if both are.
    """
    return surface_distances(pred, ref, spacing, connectivity).nsd(tolerance_mm)
