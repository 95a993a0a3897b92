"""Phantom liver lesions: hypo- and hyper-dense, 5-60 mm, partial-volume borders, several per
case and some cases without; CT noise correlated in-plane."""

from __future__ import annotations

import numpy as np
import pytest

from e2net_eval.data import phantom_lesions as pl
from e2net_eval.data.anatomy import TUMOUR_FREE_EVERY, phantom_case


def _grid(n=(96, 96, 40), spacing=(1.0, 1.0, 4.0)):
    axes = [np.arange(k, dtype=np.float32) * s for k, s in zip(n, spacing, strict=True)]
    return pl.Grid(axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :], spacing)


@pytest.fixture(scope="module")
def drawn():
    """Lesions drawn into a uniform liver without blur or noise (draw_lesions alone)."""
    grid = _grid()
    liver = np.zeros(grid.shape, dtype=bool)
    liver[4:-4, 4:-4, 2:-2] = True
    out = []
    for seed in range(24):  # one lesion per volume, so every changed voxel is that lesion's
        hu = np.full(grid.shape, 110.0, dtype=np.float32)  # a uniform 110 HU liver
        masks = pl.draw_lesions(np.random.default_rng(seed), hu, liver, grid, 110.0, 1)
        out.append((hu - 110.0, masks))  # the lesions' HU against the parenchyma
    return grid, liver, out


def test_lesion_sizes_kinds_and_labels(drawn):
    grid, liver, out = drawn
    voxel = float(np.prod(grid.spacing))
    diameters, signs = [], set()
    for hu, masks in out:
        for m in masks:
            assert not (m & ~liver).any()  # a lesion is labelled inside the liver only
            diameters.append((6 * m.sum() * voxel / np.pi) ** (1 / 3))
            signs.add(int(np.sign(np.median(hu[m]))))
    assert {-1, 1} <= signs  # hypo- and hyper-dense lesions
    solid = [np.median(hu[m]) + 110 for hu, masks in out for m in masks]
    assert min(solid) >= pl.LESION_MIN_HU - 5  # solid lesions stay above water density
    assert min(diameters) >= 3.0 and max(diameters) <= 1.3 * pl.DIAMETER_MM[1]
    assert np.median(diameters) > 10


def test_borders_are_partial_volume(drawn):
    """A voxel on a lesion's border takes the share of its volume inside the lesion: the
    analytic occupancy agrees with a 9x9x9 supersampling of the voxel (1 x 1 x 4 mm)."""
    grid, liver, out = drawn
    rng = np.random.default_rng(5)
    errors = []
    sub = (np.arange(9) + 0.5) / 9 - 0.5
    for _ in range(6):
        lesion = pl.random_lesion(rng, np.zeros(3), dominant=True)
        axes = [np.arange(-40, 41, s, dtype=np.float64) for s in grid.spacing]
        offset = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
        frac = lesion.occupancy(offset, grid.spacing)
        border = np.argwhere((frac > 0.02) & (frac < 0.98))
        for i, j, k in border[rng.choice(len(border), 60, replace=False)]:
            pts = np.stack(np.meshgrid(*[sub * s for s in grid.spacing], indexing="ij"), -1)
            inside = lesion.radius(pts + offset[i, j, k])[0] < 1
            errors.append(abs(frac[i, j, k] - inside.mean()))
        d_lob = lesion.radius(offset)[0]
        assert (frac[d_lob > 1.5] == 0).all() and frac[d_lob < 0.5].min() > 0.5
    assert np.mean(errors) < 0.08 and np.percentile(errors, 95) < 0.25
    for hu, masks in out:  # and the drawn images carry it: intensity spills past the label
        for m in masks:
            ring = hu[(~m) & liver & (np.abs(hu) > 0)]
            assert ring.size > 0 and np.abs(ring).max() < np.abs(hu[m]).max()


def test_cases_have_several_lesions_and_some_none():
    cases = [phantom_case(0, i, 64, (12, 16)) for i in range(12)]
    counts = [len(c.tumour_masks) for c in cases]
    assert all(n == 0 for i, n in enumerate(counts) if i % TUMOUR_FREE_EVERY == 2)
    assert all(n >= 1 for i, n in enumerate(counts) if i % TUMOUR_FREE_EVERY != 2)
    assert max(counts) >= 2


def test_ct_noise_level_and_in_plane_correlation():
    rng = np.random.default_rng(0)
    noise = pl.ct_noise(rng, (96, 96, 24), (0.8, 0.8, 5.0))
    assert 6.5 <= noise.std() <= 14.5  # 7-14 HU at 5 mm slices
    x = noise - noise.mean()
    inplane = (x[1:] * x[:-1]).mean() / x.var()
    across = (x[:, :, 1:] * x[:, :, :-1]).mean() / x.var()
    assert inplane > 0.3 and abs(across) < 0.05
    thin = pl.ct_noise(np.random.default_rng(0), (96, 96, 24), (0.8, 0.8, 1.25))
    assert thin.std() == pytest.approx(2 * noise.std(), rel=1e-3)  # 1 / sqrt(thickness)
