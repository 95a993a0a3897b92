"""Surface distances: golden cases, anisotropic spacing, empty masks, crop invariance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from e2net_eval.metrics import assd, mssd, rmsd, surface_distances
from e2net_eval.metrics.surface import bounding_box, erode, surface

METHODS = ("kdtree", "edt")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_single_voxels_each_axis(method, axis):
    spacing = (0.5, 1.5, 2.5)
    p = np.zeros((5, 6, 7), bool)
    r = np.zeros_like(p)
    p[1, 1, 1] = True
    idx = [1, 1, 1]
    idx[axis] += 3
    r[tuple(idx)] = True
    sd = surface_distances(p, r, spacing, method=method)
    expected = 3 * spacing[axis]
    assert sd.assd() == pytest.approx(expected, rel=1e-7)
    assert sd.rmsd() == pytest.approx(expected, rel=1e-7)
    assert sd.mssd() == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("method", METHODS)
def test_voxel_against_two_voxel_line(method):
    # S_P = {a}, S_R = {a, b}, |a-b| = 2 mm: P->R [0], R->P [0, 2]
    p = np.zeros((3, 3, 4), bool)
    r = np.zeros_like(p)
    p[1, 1, 1] = True
    r[1, 1, 1:3] = True
    sd = surface_distances(p, r, (1.0, 1.0, 2.0), method=method)
    assert sd.assd() == pytest.approx(2 / 3, rel=1e-7)
    assert sd.rmsd() == pytest.approx(math.sqrt(4 / 3), rel=1e-7)
    assert sd.mssd() == pytest.approx(2.0, rel=1e-7)
    assert sorted(sd.ref_to_pred.tolist()) == pytest.approx([0.0, 2.0], abs=1e-6)


def ball(shape, spacing, centre_mm, radius_mm):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    d2 = sum(((g * s) - c) ** 2 for g, s, c in zip(grids, spacing, centre_mm, strict=True))
    return d2 <= radius_mm**2


@pytest.mark.parametrize("method", METHODS)
def test_concentric_balls_anisotropic(method):
    # Balls of 12 mm and 8 mm about one centre: the continuous surfaces are 4 mm apart
    # everywhere. Every surface voxel centre lies within one voxel diagonal `t` inside its
    # sphere, so each directed distance lies in [4 - t, 4 + 2t] and the means near 4 - t/2.
    spacing = (0.25, 0.35, 0.5)
    t = math.sqrt(sum(s * s for s in spacing))
    shape = (120, 88, 64)
    centre = (15.0, 15.2, 15.7)
    outer = ball(shape, spacing, centre, 12.0)
    inner = ball(shape, spacing, centre, 8.0)
    sd = surface_distances(inner, outer, spacing, method=method)
    for d in (sd.pred_to_ref, sd.ref_to_pred):
        assert d.min() >= 4.0 - t and d.max() <= 4.0 + 2 * t
    assert 4.0 - t <= sd.assd() <= 4.0
    assert 4.0 - t <= sd.rmsd() <= 4.0 + t
    assert 4.0 - t <= sd.mssd() <= 4.0 + 2 * t
    # a wrongly applied spacing (axes swapped) would move the answer well outside this
    wrong = surface_distances(inner, outer, spacing[::-1], method=method)
    assert wrong.mssd() > 4.0 + 2 * t
    # symmetric
    back = surface_distances(outer, inner, spacing, method=method)
    assert back.assd() == pytest.approx(sd.assd(), rel=1e-9)
    assert back.mssd() == pytest.approx(sd.mssd(), rel=1e-9)


def test_identical_masks_zero():
    a = ball((20, 20, 20), (1, 1, 2), (10, 10, 20), 6)
    assert assd(a, a, (1, 1, 2)) == 0.0 and rmsd(a, a, (1, 1, 2)) == 0.0
    assert mssd(a, a, (1, 1, 2)) == 0.0


@pytest.mark.parametrize("fn", [assd, rmsd, mssd])
def test_empty_masks(fn):
    full = np.zeros((4, 4, 4), bool)
    full[1:3, 1:3, 1:3] = True
    empty = np.zeros_like(full)
    assert math.isnan(fn(full, empty, (1, 1, 1)))  # reference empty: undefined
    assert math.isnan(fn(empty, full, (1, 1, 1)))  # prediction empty: undefined
    assert fn(empty, empty, (1, 1, 1)) == 0.0  # both empty: defined, perfect
    assert not surface_distances(full, empty, (1, 1, 1)).defined


@pytest.mark.parametrize("connectivity", [1, 2, 3])
def test_erosion_matches_scipy(connectivity):
    rng = np.random.default_rng(connectivity)
    for _ in range(5):
        a = ndimage.binary_dilation(rng.random((13, 11, 9)) > 0.85)
        a[0, :, 3] = True  # objects touching the array border
        a[:, -1, -1] = True
        ref = ndimage.binary_erosion(
            a, ndimage.generate_binary_structure(3, connectivity), border_value=0
        )
        assert np.array_equal(erode(a, connectivity), ref)


def test_default_surface_is_18_neighbourhood():
    cube = np.zeros((5, 5, 5), bool)
    cube[1:4, 1:4, 1:4] = True
    s = surface(cube)
    assert s.sum() == 26 and not s[2, 2, 2]


def test_crop_does_not_change_distances():
    # Objects at the array border and far apart: cropping must not move any distance.
    rng = np.random.default_rng(7)
    spacing = (0.8, 1.1, 3.0)
    p = np.zeros((30, 25, 20), bool)
    r = np.zeros_like(p)
    p[0:4, 0:5, 0:3] = True
    r[20:30, 18:25, 12:20] = rng.random((10, 7, 8)) > 0.3
    small = surface_distances(p, r, spacing)
    padded_p = np.pad(p, ((5, 7), (3, 2), (4, 9)))
    padded_r = np.pad(r, ((5, 7), (3, 2), (4, 9)))
    big = surface_distances(padded_p, padded_r, spacing)
    # Padding removes the array border, which only matters for erosion at the border:
    # compare against scipy EDT on the padded full volume instead.
    st = ndimage.generate_binary_structure(3, 2)
    sp_ = padded_p & ~ndimage.binary_erosion(padded_p, st)
    sr_ = padded_r & ~ndimage.binary_erosion(padded_r, st)
    d_pr = ndimage.distance_transform_edt(~sr_, sampling=spacing)[sp_]
    d_rp = ndimage.distance_transform_edt(~sp_, sampling=spacing)[sr_]
    expected = (d_pr.sum() + d_rp.sum()) / (d_pr.size + d_rp.size)
    assert big.assd() == pytest.approx(expected, rel=1e-6)
    assert big.mssd() == pytest.approx(max(d_pr.max(), d_rp.max()), rel=1e-6)
    assert small.n_surface > 0


def test_bounding_box():
    a = np.zeros((6, 7, 8), bool)
    assert bounding_box(a) is None
    a[1, 2, 3] = a[4, 5, 6] = True
    assert bounding_box(a) == (slice(1, 5), slice(2, 6), slice(3, 7))


def test_bad_arguments():
    a = np.ones((3, 3, 3), bool)
    with pytest.raises(ValueError):
        surface_distances(a, a, (1, 1))
    with pytest.raises(ValueError):
        surface_distances(a, a, (1, 1, 1), method="fast")
    with pytest.raises(ValueError):
        surface_distances(a, np.ones((3, 3, 4), bool), (1, 1, 1))


@pytest.mark.parametrize("method", METHODS)
def test_fortran_order_input_same_result(method):
    # nibabel hands out Fortran-ordered arrays; the anisotropy must still follow array axes.
    spacing = (0.6, 1.1, 2.7)
    inner = ball((40, 30, 20), spacing, (12.0, 16.0, 27.0), 7.0)
    outer = ball((40, 30, 20), spacing, (12.5, 16.0, 26.0), 10.0)
    c = surface_distances(inner, outer, spacing, method=method)
    f = surface_distances(
        np.asfortranarray(inner), np.asfortranarray(outer), spacing, method=method
    )
    assert f.assd() == pytest.approx(c.assd(), rel=1e-12)
    assert f.mssd() == pytest.approx(c.mssd(), rel=1e-12)
