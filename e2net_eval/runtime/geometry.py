"""Slice geometry shared by training and inference: liver boxes, crops, resizing, pasting.

A box is ``(r0, r1, c0, c1)``, half-open rows and columns of a slice. Stage 2 sees the liver
box grown by a margin, clipped to the slice, resized to ``size x size`` (bilinear for images,
nearest for labels); its output is resized back bilinearly to the box and pasted into an
otherwise empty slice. Training and inference call the same functions, so whatever the
network learned on a crop lands on the voxels it came from.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

Box = tuple[int, int, int, int]

#: Windowed value of padding outside a slice: -1 is the bottom of the HU window (air, fat).
PAD_VALUE = -1.0


def slice_boxes(mask: torch.Tensor) -> list[Box | None]:
    """Half-open box of every slice of a ``(Z, H, W)`` bool mask, None where a slice is empty
    (the projections are taken on the mask's device)."""
    boxes: list[Box | None] = []
    for r, c in zip(mask.any(dim=2).cpu().numpy(), mask.any(dim=1).cpu().numpy(), strict=True):
        rr, cc = np.flatnonzero(r), np.flatnonzero(c)
        boxes.append(
            (int(rr[0]), int(rr[-1]) + 1, int(cc[0]), int(cc[-1]) + 1) if rr.size else None
        )
    return boxes


def grow_box(box: Box, margins: tuple[int, int, int, int], shape: tuple[int, int]) -> Box:
    """Grow `box` by (top, bottom, left, right) pixels, clipped to a slice of `shape` (H, W)."""
    r0, r1, c0, c1 = box
    top, bottom, left, right = margins
    h, w = shape
    return max(r0 - top, 0), min(r1 + bottom, h), max(c0 - left, 0), min(c1 + right, w)


def crop_resize(array: torch.Tensor, box: Box, size: int, *, mode: str) -> torch.Tensor:
    """Crop ``(..., H, W)`` to `box` and resize to ``(..., size, size)``.

    `mode` is ``"bilinear"`` for images and probabilities, ``"nearest"`` for labels. Works on
    ``(C, H, W)`` or ``(B, C, H, W)``; the dtype is kept (labels come back as they went in).
    """
    r0, r1, c0, c1 = box
    crop = array[..., r0:r1, c0:c1]
    squeeze = crop.dim() == 3
    x = crop.unsqueeze(0) if squeeze else crop
    dtype = x.dtype
    x = x.float()
    if mode == "bilinear":
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    elif mode == "nearest":
        x = F.interpolate(x, size=(size, size), mode="nearest-exact")
    else:
        raise ValueError(f"unknown resize mode {mode!r}")
    x = x.to(dtype)
    return x[0] if squeeze else x


def paste_back(prob: torch.Tensor, box: Box, shape: tuple[int, int]) -> torch.Tensor:
    """Resize ``(C, S, S)`` probabilities to `box` (bilinear) in a zero ``(C, H, W)`` slice."""
    r0, r1, c0, c1 = box
    out = torch.zeros((prob.shape[0], *shape), dtype=prob.dtype, device=prob.device)
    resized = F.interpolate(
        prob[None].float(), size=(r1 - r0, c1 - c0), mode="bilinear", align_corners=False
    )[0]
    out[:, r0:r1, c0:c1] = resized.to(prob.dtype)
    return out


def random_crop(
    image: np.ndarray, label: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A random ``size x size`` window of ``(C, H, W)`` image and label (padded if smaller).

    Padding is centred at random too (the slice lands anywhere in the window), images with
    `PAD_VALUE`, labels with 0.
    """
    _, h, w = image.shape
    if h < size or w < size:
        ph, pw = max(size - h, 0), max(size - w, 0)
        top, left = int(rng.integers(0, ph + 1)), int(rng.integers(0, pw + 1))
        pads = ((0, 0), (top, ph - top), (left, pw - left))
        image = np.pad(image, pads, constant_values=PAD_VALUE)
        label = np.pad(label, pads, constant_values=0)
        _, h, w = image.shape
    r = int(rng.integers(0, h - size + 1))
    c = int(rng.integers(0, w - size + 1))
    return image[:, r : r + size, c : c + size], label[:, r : r + size, c : c + size]


def pad_batch_like_crops(
    x: torch.Tensor, crop: int, multiple: int
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``(B, C, H, W)`` at the bottom/right with `PAD_VALUE` to the smallest sizes
    ``= crop (mod multiple)``; the batch and the original (H, W).

    A network trained on ``crop x crop`` windows got no loss on the last rows and columns of
    its padded grid (small profile: 112 -> 128); so padded, every kept pixel of a whole slice
    lies as far from that border as in training (docs/training.md, "Crop size and whole
    slices"). Paper sizes (crop 448, slices 512) are not padded.
    """
    h, w = x.shape[-2:]
    ph, pw = (crop - h) % multiple, (crop - w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), value=PAD_VALUE)
    return x, (h, w)


def scaled_pixels(pixels: float, input_size: int, paper_size: int = 256) -> int:
    """A pixel margin of the paper (at 256x256 stage-2 input) scaled to the profile's size."""
    return max(1, int(round(pixels * input_size / paper_size)))
