"""Exact distance (mm) from each voxel of one surface to the nearest voxel of another.

Three exact methods (``scan``, ``kdtree``, ``edt``; see docs/metrics.md). Each takes the
query voxels as flat indices into a C-ordered volume and returns float64 distances in that
order; a query voxel on the target is at 0. ``directed_scan`` and ``directed_kdtree`` are
the same on two boolean volumes (any shape, no margin needed), for tests and direct use.
"""

from __future__ import annotations

import functools

import edt
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

SCAN_OFFSETS = 512  # lattice offsets tried before falling back to the k-d tree
#: Most lattice points the offset box of `scan_offsets` may hold (times ``count`` / 512 for a
#: larger ``count``). With 512 offsets the box holds 729 points for 1 mm cubes, 1,323 for
#: 0.56 x 0.56 x 5.67 mm and 9,801 at a spacing ratio of 1000 (docs/reliability.md); past
#: the bound the radius shrinks to fit (the k-d tree resolves the rest, exactly), so memory
#: no longer grows with the ratio.
MAX_BOX = 1 << 16
_SCAN_BLOCK = 32  # offsets between two checks of whether the scan still pays
_SCAN_MIN_GAIN = 0.2  # a block that resolves less than this fraction made no progress
# Measured single-thread costs (seconds) behind the decision to hand the rest to the tree:
# one scan step (fixed part, per unresolved voxel) and the tree (per point, per query).
_STEP_COST = 4e-6
_STEP_COST_PER_QUERY = 4e-9
_TREE_COST_PER_POINT = 1.7e-7
_TREE_COST_PER_QUERY = 8.5e-7


@functools.lru_cache(maxsize=64)
def scan_offsets(spacing: tuple[float, ...], count: int = SCAN_OFFSETS):
    """Lattice offsets (n, ndim) and their lengths (mm), shortest first, without 0.

    All offsets of length <= ``radius`` are included and nothing longer, so a voxel with
    no target voxel at any of these offsets is more than ``radius`` from the target.
    Returns (offsets, lengths, radius, half-widths of the offset box in voxels): a query
    voxel must be at least the half-width from the array's edge along each axis.
    """
    sp = np.asarray(spacing, dtype=np.float64)
    ndim = sp.size
    unit_ball = {1: 2.0, 2: np.pi}.get(ndim, 4.0 * np.pi / 3.0)
    radius = float((count * float(np.prod(sp)) / unit_ball) ** (1.0 / ndim))
    radius = max(radius, float(sp.min()))  # at least the nearest neighbours
    radius = _fit_box(sp, radius, max(MAX_BOX, MAX_BOX * count // SCAN_OFFSETS))
    half = np.floor(radius / sp).astype(np.int64)
    axes = [np.arange(-h, h + 1) for h in half]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, ndim)
    length = np.sqrt(((grid * sp) ** 2).sum(axis=1))
    keep = (length <= radius) & (length > 0)
    order = np.argsort(length[keep], kind="stable")
    offsets = grid[keep][order]
    lengths = length[keep][order]
    offsets.setflags(write=False)
    lengths.setflags(write=False)
    return offsets, lengths, radius, tuple(int(h) for h in half)


def _box_size(sp: np.ndarray, radius: float) -> float:
    """Lattice points in the box of half-widths ``floor(radius / sp)`` (as a float: no
    overflow for any spacing)."""
    return float(np.prod(2.0 * np.floor(radius / sp) + 1.0))


def _fit_box(sp: np.ndarray, radius: float, limit: int) -> float:
    """`radius`, or the largest radius (to float precision, by bisection) whose offset box
    holds at most `limit` points; never below the smallest spacing (a box of at most 3 per
    axis). Only extreme anisotropy reaches the bound; then fewer offsets are scanned."""
    if _box_size(sp, radius) <= limit:
        return radius
    # a box holds more than 2 * radius / min(sp) - 1 points: no radius above `hi` fits
    lo, hi = float(sp.min()), min(radius, float(sp.min()) * (limit + 1) / 2)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if _box_size(sp, mid) <= limit else (lo, mid)
    return lo


def _strides(shape: tuple[int, ...]) -> np.ndarray:
    return np.array([int(np.prod(shape[a + 1 :])) for a in range(len(shape))], dtype=np.int64)


def _coords(flat: np.ndarray, shape: tuple[int, ...], spacing) -> np.ndarray:
    """Voxel-centre coordinates in mm (n, ndim) of flat indices."""
    return np.stack(np.unravel_index(flat, shape), axis=-1) * np.asarray(spacing, np.float64)


def nearest_kdtree(src: np.ndarray, dst: np.ndarray, shape: tuple[int, ...], spacing) -> np.ndarray:
    """Distances (mm) from flat voxel indices `src` to the nearest of flat indices `dst`."""
    tree = cKDTree(_coords(dst, shape, spacing), balanced_tree=False, compact_nodes=False)
    dist, _ = tree.query(_coords(src, shape, spacing), k=1)
    return dist


def nearest_scan(
    src: np.ndarray,
    dst_mask: np.ndarray,
    dst: np.ndarray,
    spacing,
    count: int = SCAN_OFFSETS,
) -> np.ndarray:
    """Distances (mm) from flat indices `src` to the nearest True voxel of `dst_mask`.

    `dst` holds the flat indices of `dst_mask`'s True voxels (for the tree fallback).
    Every `src` voxel must keep ``scan_offsets(spacing, count)[3]`` voxels from the edge
    of `dst_mask` along each axis (`scan_margin`).
    """
    shape = dst_mask.shape
    flat_dst = dst_mask.reshape(-1)
    dist = np.zeros(src.size, dtype=np.float64)
    slot = np.flatnonzero(~flat_dst[src])  # queries not on the target
    if slot.size == 0:
        return dist
    if dst.size == 0:
        raise ValueError("the target has no voxel: distances are undefined")
    offsets, lengths, _, _ = scan_offsets(tuple(float(s) for s in spacing), count)
    deltas = offsets @ _strides(shape)
    todo = src[slot]
    mark = todo.size

    def tree_cost(n_query: int) -> float:
        return dst.size * _TREE_COST_PER_POINT + n_query * _TREE_COST_PER_QUERY

    for i, delta in enumerate(deltas):
        hit = flat_dst[todo + delta]
        if hit.any():
            dist[slot[hit]] = lengths[i]
            miss = ~hit
            todo, slot = todo[miss], slot[miss]
            if todo.size == 0:
                return dist
        if (i + 1) % _SCAN_BLOCK == 0:
            left = deltas.size - i - 1
            scan_cost = left * (_STEP_COST + todo.size * _STEP_COST_PER_QUERY)
            if todo.size > (1.0 - _SCAN_MIN_GAIN) * mark and scan_cost > tree_cost(todo.size):
                break  # the scan stopped paying: the tree takes the rest
            mark = todo.size
    dist[slot] = nearest_kdtree(todo, dst, shape, spacing)
    return dist


def scan_margin(spacing, count: int = SCAN_OFFSETS) -> tuple[int, ...]:
    """Voxels a query must keep from the array edge along each axis for `nearest_scan`."""
    return scan_offsets(tuple(float(s) for s in spacing), count)[3]


def nearest_edt(src: np.ndarray, dst_mask: np.ndarray, spacing) -> np.ndarray:
    """Distances (mm) from flat indices `src` to the nearest True voxel of `dst_mask`."""
    spacing = tuple(float(s) for s in spacing)
    if dst_mask.ndim == 3:
        sq = edt.edtsq(np.ascontiguousarray(~dst_mask), anisotropy=spacing, black_border=False)
        return np.sqrt(sq.reshape(-1)[src].astype(np.float64))
    return ndimage.distance_transform_edt(~dst_mask, sampling=spacing).reshape(-1)[src]


# --- the same on two boolean volumes -----------------------------------------------------


def directed_kdtree(src: np.ndarray, dst: np.ndarray, spacing) -> np.ndarray:
    """Distance (mm) from every True voxel of `src` to the nearest True voxel of `dst`,
    in ``np.argwhere(src)`` order; voxels of `src` on `dst` are at 0."""
    src, dst = np.ascontiguousarray(src, bool), np.ascontiguousarray(dst, bool)
    s_idx, d_idx = np.flatnonzero(src), np.flatnonzero(dst)
    out = np.zeros(s_idx.size, dtype=np.float64)
    off = ~dst.reshape(-1)[s_idx]
    if off.any():
        out[off] = nearest_kdtree(s_idx[off], d_idx, src.shape, spacing)
    return out


def directed_scan(src: np.ndarray, dst: np.ndarray, spacing, count: int = SCAN_OFFSETS):
    """As `directed_kdtree`, by the offset scan (exact); pads `dst` by the scan margin."""
    half = scan_margin(spacing, count)
    src = np.pad(np.asarray(src, bool), [(h, h) for h in half])
    dst = np.pad(np.asarray(dst, bool), [(h, h) for h in half])
    return nearest_scan(np.flatnonzero(src), dst, np.flatnonzero(dst), spacing, count)
