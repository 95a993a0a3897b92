"""HD95, pooled HD95, NSD, MASD: hand-derived golden cases, empty masks, neighbourhoods, and
the offset scan (`nearest.directed_scan`) equal to the k-d tree on every kind of pair."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from e2net_eval.metrics import hd95, hd95_pooled, masd, nsd, surface_distances
from e2net_eval.metrics.nearest import directed_kdtree, directed_scan, scan_offsets
from e2net_eval.metrics.surface import PEER_CONNECTIVITY, surface, surface_distances_multi

METHODS = ("scan", "kdtree", "edt")


def voxel_and_line():
    # S_P = {a}, S_R = {a, b}, |a - b| = 2 mm: P->R [0], R->P [0, 2]
    p = np.zeros((3, 3, 4), bool)
    r = np.zeros_like(p)
    p[1, 1, 1] = True
    r[1, 1, 1:3] = True
    return p, r, (1.0, 1.0, 2.0)


@pytest.mark.parametrize("method", METHODS)
def test_golden_voxel_against_line(method):
    p, r, spacing = voxel_and_line()
    sd = surface_distances(p, r, spacing, PEER_CONNECTIVITY, method=method)
    # directed 95th percentiles: P->R of [0] = 0; R->P of [0, 2] = 0 + 0.95 * 2 = 1.9
    assert sd.hd_percentile() == pytest.approx(1.9, rel=1e-7)
    # pooled [0, 0, 2]: position 0.95 * 2 = 1.9 -> 0 + 0.9 * (2 - 0) = 1.8
    assert sd.hd_percentile_pooled() == pytest.approx(1.8, rel=1e-7)
    # MASD: (mean [0] + mean [0, 2]) / 2 = 0.5; the pooled ASSD is 2/3
    assert sd.masd() == pytest.approx(0.5, rel=1e-7)
    assert sd.assd() == pytest.approx(2 / 3, rel=1e-7)
    # NSD: 2 of 3 surface voxels within 1 mm; at exactly 2 mm the tie counts as within
    assert sd.nsd(1.0) == pytest.approx(2 / 3)
    assert sd.nsd(1.999) == pytest.approx(2 / 3)
    assert sd.nsd(2.0) == 1.0
    assert sd.nsd(0.0) == pytest.approx(2 / 3)


def test_golden_functions_match_methods():
    p, r, spacing = voxel_and_line()
    assert hd95(p, r, spacing) == pytest.approx(1.9)
    assert hd95(r, p, spacing) == pytest.approx(1.9)  # symmetric
    assert hd95_pooled(p, r, spacing) == pytest.approx(1.8)
    assert masd(p, r, spacing) == pytest.approx(0.5)
    assert nsd(p, r, spacing, 1.0) == pytest.approx(2 / 3)
    assert hd95(p, r, spacing, percentile=100) == pytest.approx(2.0)


@pytest.mark.parametrize("method", METHODS)
def test_golden_shifted_slab_anisotropic(method):
    # A 4x4x4 block against itself shifted by one slice along the 2.5 mm axis. 6-surfaces:
    # 56 voxels each (64 minus the 2x2x2 core). Directed P->R (and, by symmetry, R->P):
    # P's last slice (16 voxels) lies one slice beyond R: 2.5 mm to R's last slice; the
    # 2x2 centre of P's first slice is inside R's core: 0.7 mm to R's side along axis 0;
    # the other 36 surface voxels of P are on S_R: 0.
    ref = np.zeros((8, 8, 10), bool)
    ref[2:6, 2:6, 2:6] = True
    pred = np.zeros_like(ref)
    pred[2:6, 2:6, 3:7] = True
    spacing = (0.7, 0.9, 2.5)
    sd = surface_distances(pred, ref, spacing, 1, method=method)
    assert sd.pred_to_ref.size == sd.ref_to_pred.size == 56
    for d in (sd.pred_to_ref, sd.ref_to_pred):
        assert sorted(d) == pytest.approx([0.0] * 36 + [0.7] * 4 + [2.5] * 16, rel=1e-6)
    assert sd.masd() == pytest.approx((16 * 2.5 + 4 * 0.7) / 56, rel=1e-7)
    # the top 16/56 = 28.6% of each direction is at 2.5 mm: both 95th percentiles are 2.5
    assert sd.hd_percentile() == pytest.approx(2.5, rel=1e-7)
    assert sd.hd_percentile_pooled() == pytest.approx(2.5, rel=1e-7)
    assert sd.nsd(2.0) == pytest.approx(80 / 112)
    assert sd.nsd(2.5) == 1.0


def test_identical_masks():
    a = np.zeros((9, 9, 9), bool)
    a[2:7, 3:6, 1:8] = True
    for fn in (hd95, hd95_pooled, masd):
        assert fn(a, a, (0.8, 0.8, 3.0)) == 0.0
    assert nsd(a, a, (0.8, 0.8, 3.0), 0.0) == 1.0


@pytest.mark.parametrize("fn", [hd95, hd95_pooled, masd])
def test_empty_masks_distances(fn):
    full = np.zeros((4, 4, 4), bool)
    full[1:3, 1:3, 1:3] = True
    empty = np.zeros_like(full)
    assert math.isnan(fn(full, empty, (1, 1, 1)))  # reference empty: undefined
    assert math.isnan(fn(empty, full, (1, 1, 1)))  # prediction empty: undefined
    assert fn(empty, empty, (1, 1, 1)) == 0.0  # both empty: defined, perfect


def test_empty_masks_nsd():
    full = np.zeros((4, 4, 4), bool)
    full[1:3, 1:3, 1:3] = True
    empty = np.zeros_like(full)
    assert nsd(full, empty, (1, 1, 1)) == 0.0
    assert nsd(empty, full, (1, 1, 1)) == 0.0
    assert nsd(empty, empty, (1, 1, 1)) == 1.0


def test_nsd_rejects_bad_tolerance():
    a = np.ones((3, 3, 3), bool)
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError):
            nsd(a, a, (1, 1, 1), bad)


def test_peer_metrics_use_six_neighbourhood():
    # A block with a notch: the voxels along the notch's concave edge have all six face
    # neighbours inside (not on the 6-surface) but an edge neighbour outside (18-surface).
    a = np.zeros((7, 7, 7), bool)
    a[1:6, 1:6, 1:6] = True
    a[4:6, 4:6, 1:6] = False  # a concave edge along the last axis
    s6, s18 = surface(a, 1), surface(a, 2)
    assert s6.sum() < s18.sum() and not (s6 & ~s18).any()
    # The peer functions default to the 6-neighbourhood and differ from the 18 one here.
    b = np.roll(a, 1, axis=0)
    sp = (1.0, 1.0, 1.0)
    assert masd(a, b, sp) == pytest.approx(surface_distances(a, b, sp, 1).masd())
    assert masd(a, b, sp) != pytest.approx(surface_distances(a, b, sp, 2).masd())


@pytest.mark.parametrize("order", [(2, 1), (1, 2), (3, 1, 2)])
@pytest.mark.parametrize("method", ["auto", "scan", "kdtree"])
def test_multi_equals_single(order, method):
    # Several neighbourhoods at once reuse the distances of voxels outside the other mask
    # (the same for every neighbourhood); the result must equal separate computations.
    rng = np.random.default_rng(4)
    for _ in range(3):
        base = ndimage.gaussian_filter(rng.random((24, 20, 14)), 1.5)
        p = base > np.quantile(base, 0.6)
        r = (base + rng.normal(0, 0.02, base.shape)) > np.quantile(base, 0.62)
        sp = (0.6, 1.3, 2.2)
        multi = surface_distances_multi(p, r, sp, (*order, order[0]), method=method)
        assert sorted(multi) == sorted(order)
        rel = 1e-6 if method == "auto" else 1e-12  # auto may pick the float32 EDT
        for conn in order:
            one = surface_distances(p, r, sp, conn, method="kdtree")
            assert multi[conn].pred_to_ref == pytest.approx(one.pred_to_ref, rel=rel)
            assert multi[conn].ref_to_pred == pytest.approx(one.ref_to_pred, rel=rel)


def test_two_dimensional_masks():
    p = np.zeros((9, 9), bool)
    r = np.zeros_like(p)
    p[2:5, 2:5] = True
    r[2:5, 5:8] = True  # the same square three columns (3 x 0.5 mm) further
    sd = surface_distances(p, r, (1.0, 0.5), 1)
    assert sd.hd_percentile(100) == pytest.approx(1.5)
    assert sd.masd() == pytest.approx(surface_distances(p, r, (1.0, 0.5), 1, "kdtree").masd())


# --- the offset scan ------------------------------------------------------------------


def test_scan_offsets_complete_and_sorted():
    spacing = (0.78, 0.78, 2.5)
    offsets, lengths, radius, half = scan_offsets(spacing, 300)
    assert np.all(np.diff(lengths) >= 0) and lengths[0] > 0
    # every lattice offset no longer than the radius is in the list, nothing longer
    axes = [np.arange(-h - 2, h + 3) for h in half]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    length = np.sqrt(((grid * np.asarray(spacing)) ** 2).sum(1))
    expected = {tuple(o) for o, d in zip(grid, length, strict=True) if 0 < d <= radius}
    assert {tuple(o) for o in offsets} == expected
    assert np.allclose(lengths, np.sqrt(((offsets * np.asarray(spacing)) ** 2).sum(1)))


def _pairs(rng):
    """Pairs that drive every branch of the scan: close, far apart, scattered, nested."""
    shape = (40, 36, 20)
    base = ndimage.gaussian_filter(rng.random(shape), 2.0)
    thr = np.quantile(base, 0.7)
    yield base > thr, (base + rng.normal(0, 0.01, shape)) > thr  # close surfaces
    a = np.zeros(shape, bool)
    b = np.zeros(shape, bool)
    a[2:8, 2:8, 2:6] = True
    b[30:38, 25:34, 12:19] = True  # far apart: nothing resolves, the tree takes all
    yield a, b
    c = a.copy()
    c[20:24, 20:24, 8:12] = True  # one close, one far component
    yield c, a | b
    yield rng.random(shape) > 0.8, rng.random(shape) > 0.85  # scattered specks


@pytest.mark.parametrize("count", [4, 40, 512])
def test_scan_equals_kdtree(count):
    rng = np.random.default_rng(count)
    for spacing in ((0.78, 0.78, 2.5), (1.0, 1.0, 1.0), (2.9, 0.35, 1.1)):
        for p, r in _pairs(rng):
            sp_, sr_ = surface(np.pad(p, 1), 1), surface(np.pad(r, 1), 1)
            for src, dst in ((sp_, sr_), (sr_, sp_)):
                ours = directed_scan(src, dst, spacing, count)
                ref = directed_kdtree(src, dst, spacing)
                assert ours.shape == ref.shape
                assert np.allclose(ours, ref, rtol=1e-12, atol=0)


def test_scan_needs_a_target():
    src = np.zeros((5, 5, 5), bool)
    src[2, 2, 2] = True
    with pytest.raises(ValueError):
        directed_scan(src, np.zeros_like(src), (1.0, 1.0, 1.0))
