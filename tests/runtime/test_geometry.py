"""Crop / resize / paste geometry and the canonical orientation round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from e2net_eval.runtime.geometry import (
    PAD_VALUE,
    crop_resize,
    grow_box,
    pad_batch_like_crops,
    paste_back,
    random_crop,
    scaled_pixels,
    slice_boxes,
)
from e2net_eval.runtime.orientation import (
    Orientation,
    context_indices,
    stored_tensor,
)


def test_slice_boxes_half_open_and_empty():
    m = np.zeros((2, 10, 12), bool)
    m[1, 2:5, 7:9] = True
    m[1, 3, 3] = True
    assert slice_boxes(torch.from_numpy(m)) == [None, (2, 5, 3, 9)]


def test_grow_box_clips_to_slice():
    assert grow_box((2, 5, 3, 9), (1, 2, 3, 4), (10, 12)) == (1, 7, 0, 12)
    assert grow_box((0, 10, 0, 12), (5, 5, 5, 5), (10, 12)) == (0, 10, 0, 12)


@pytest.mark.parametrize("box", [(3, 40, 5, 61), (0, 17, 20, 23), (10, 64, 0, 64), (7, 8, 9, 10)])
def test_box_pasted_back_lands_on_its_voxels(box):
    """A crop whose content is 'all inside' comes back as exactly the box, nothing else."""
    shape = (64, 64)
    r0, r1, c0, c1 = box
    image = torch.zeros((1, *shape))
    image[:, r0:r1, c0:c1] = 1.0
    crop = crop_resize(image, box, 32, mode="bilinear")
    assert torch.all(crop == 1.0)
    back = paste_back(crop, box, shape)[0] > 0.5
    expected = torch.zeros(shape, dtype=torch.bool)
    expected[r0:r1, c0:c1] = True
    assert torch.equal(back, expected)


def test_structure_inside_box_returns_to_its_place():
    """A square inside the box, resized 37->64 and back, sits on the same voxels (+-1 px)."""
    shape = (80, 90)
    box = (20, 57, 30, 67)  # 37 x 37
    label = torch.zeros((1, *shape), dtype=torch.uint8)
    label[0, 30:40, 45:52] = 1
    crop = crop_resize(label, box, 64, mode="nearest")
    assert crop.dtype == torch.uint8 and crop.shape == (1, 64, 64)
    back = paste_back(crop.float(), box, shape)[0] > 0.5
    ref = label[0].bool()
    assert (back ^ ref).sum() <= 2 * (10 + 7)  # at most a one-pixel rim differs
    rows, cols = np.nonzero(back.numpy())
    assert abs(rows.mean() - 34.5) < 0.6 and abs(cols.mean() - 48.0) < 0.6
    assert not back[:20].any() and not back[57:].any()


def test_crop_resize_batch_and_modes():
    x = torch.arange(2 * 3 * 20 * 20, dtype=torch.float32).reshape(2, 3, 20, 20)
    y = crop_resize(x, (0, 20, 0, 20), 20, mode="bilinear")
    assert torch.allclose(y, x)  # identity resize
    with pytest.raises(ValueError):
        crop_resize(x, (0, 4, 0, 4), 8, mode="cubic")


def test_random_crop_pads_small_slices():
    rng = np.random.default_rng(0)
    image = np.zeros((3, 50, 70), np.float32)
    label = np.ones((1, 50, 70), np.uint8)
    img, lab = random_crop(image, label, 64, rng)
    assert img.shape == (3, 64, 64) and lab.shape == (1, 64, 64)
    assert (img == PAD_VALUE).any() and (lab == 0).any()
    # the non-padded part is the slice: labels 1 exactly where the image is 0
    assert np.array_equal(lab[0] == 1, img[0] == 0)


@pytest.mark.parametrize(
    ("side", "crop", "padded"),
    [(128, 112, 144), (512, 448, 512), (100, 112, 112), (50, 112, 80), (96, 64, 96)],
)
def test_pad_batch_like_crops(side, crop, padded):
    x = torch.zeros(2, 1, side, side + 3)
    y, size = pad_batch_like_crops(x, crop, 32)
    assert size == (side, side + 3)
    assert y.shape[-2] == padded and y.shape[-2] % 32 == crop % 32
    assert y.shape[-1] >= side + 3 and y.shape[-1] % 32 == crop % 32
    assert torch.all(y[:, :, side:] == PAD_VALUE) and torch.all(y[:, :, :, side + 3 :] == PAD_VALUE)
    assert torch.all(y[:, :, :side, : side + 3] == 0)


def test_scaled_pixels():
    assert scaled_pixels(35, 256) == 35
    assert scaled_pixels(10, 64) == 2 and scaled_pixels(60, 64) == 15


def test_context_indices_clamped():
    assert context_indices(2, 5, 3) == [1, 2, 3]
    assert context_indices(0, 5, 3) == [0, 0, 1]
    assert context_indices(4, 5, 5) == [2, 3, 4, 4, 4]
    with pytest.raises(ValueError):
        context_indices(2, 5, 2)


def _affine(perm, flips, zooms=(0.7, 0.8, 2.5)):
    """An affine whose array axes are world axes `perm` with sign flips."""
    a = np.zeros((4, 4))
    for arr_axis, (world, flip) in enumerate(zip(perm, flips, strict=True)):
        a[world, arr_axis] = -zooms[arr_axis] if flip else zooms[arr_axis]
    a[3, 3] = 1
    return a


@pytest.mark.parametrize("perm", [(0, 1, 2), (1, 0, 2), (2, 0, 1), (0, 2, 1)])
@pytest.mark.parametrize("flips", [(False, False, False), (True, False, True), (True, True, False)])
def test_orientation_round_trip_and_slice_axis(perm, flips):
    vol = np.random.default_rng(1).integers(0, 100, size=(5, 6, 7))
    o = Orientation.from_affine(_affine(perm, flips))
    stack = o.slices(vol)
    assert o.slice_axis == perm.index(2)
    assert stack.shape[0] == vol.shape[o.slice_axis]
    assert np.array_equal(stored_tensor(o, torch.from_numpy(stack)).numpy(), vol)


def test_flipped_case_gives_same_canonical_slices():
    vol = np.random.default_rng(2).normal(size=(6, 5, 4))
    a = _affine((0, 1, 2), (True, False, False))
    flipped = vol[::-1]
    a_flipped = a.copy()
    a_flipped[:3, 0] *= -1
    a_flipped[:3, 3] = a[:3, 3] + a[:3, 0] * (vol.shape[0] - 1)
    assert np.array_equal(
        Orientation.from_affine(a).slices(vol), Orientation.from_affine(a_flipped).slices(flipped)
    )


@pytest.mark.parametrize("perm", [(0, 1, 2), (1, 0, 2), (2, 0, 1), (1, 2, 0)])
@pytest.mark.parametrize("flips", [(False, False, False), (True, False, True), (False, True, True)])
def test_torch_orientation_matches_numpy(perm, flips):
    from e2net_eval.runtime.orientation import canonical_tensor, stored_tensor

    vol = np.random.default_rng(3).integers(0, 1000, size=(5, 6, 7)).astype(np.int16)
    o = Orientation.from_affine(_affine(perm, flips))
    t = canonical_tensor(o, torch.from_numpy(vol))
    assert np.array_equal(t.numpy(), o.slices(vol))
    assert np.array_equal(stored_tensor(o, t).numpy(), vol)
    # nibabel hands out Fortran-ordered arrays: same result
    assert np.array_equal(
        canonical_tensor(o, torch.from_numpy(np.asfortranarray(vol))).numpy(), o.slices(vol)
    )
