"""Supervision of the edge branch: binary edge maps and edge distance maps (paper section 2).

Computed on the CPU with scipy, per image and per channel (liver, tumour), on the crop the
network sees. `edge_targets` takes and returns torch tensors; `edge_map` / `distance_map`
work on one 2D numpy mask.

Edge: E = M AND NOT erode(M), erosion with the 4-neighbourhood (3x3 cross): the object's
pixels with a 4-neighbour outside it (a one-pixel inner boundary). Pixels beyond the image
border count as object (scipy `border_value=1`): where a crop cuts through an organ there is
no true boundary, so none is drawn.

Distance map. The paper: distance transform of the edge image, times the object mask,
normalised to [0, 1], one minus it, i.e. literally 1 - D M / max(D M), which is 1 outside the
object. We multiply by the mask once more (our reading of its intent, "the pixels closer to
the edge have larger values"; docs/models.md, departures), for a mask M with edge E:

    D(x)  = min_{e : E(e) = 1} ||x - e||_2          (Euclidean, in pixels)
    T(x)  = M(x) * (1 - D(x) M(x) / max_y D(y) M(y))

so T = 1 on the edge, falls linearly with depth to 0 at the deepest object pixel, and is 0
outside the object. The maximum is taken per image and per channel (all objects of one
channel in one crop share it). Degenerate cases: an object with no interior pixel
(max D M = 0) gives T = M; no edge pixel at all (empty mask, or an object covering the whole
crop) gives T = 0.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

KINDS = ("edge", "dist")
_CROSS = ndimage.generate_binary_structure(2, 1)


def edge_map(mask: np.ndarray) -> np.ndarray:
    """(H, W) binary mask -> (H, W) float32 {0, 1} inner boundary (see module docstring)."""
    m = np.asarray(mask) > 0.5
    if not m.any():
        return np.zeros(m.shape, np.float32)
    inner = ndimage.binary_erosion(m, structure=_CROSS, border_value=1)
    return (m & ~inner).astype(np.float32)


def distance_map(mask: np.ndarray) -> np.ndarray:
    """(H, W) binary mask -> (H, W) float32 in [0, 1]: T = M (1 - D M / max(D M))."""
    m = np.asarray(mask) > 0.5
    edge = edge_map(m) > 0
    if not edge.any():
        return np.zeros(m.shape, np.float32)
    dist = ndimage.distance_transform_edt(~edge) * m
    peak = dist.max()
    norm = dist / peak if peak > 0 else np.zeros_like(dist)
    return ((1.0 - norm) * m).astype(np.float32)


def edge_targets(mask: torch.Tensor, kind: str) -> torch.Tensor:
    """Mask (B, C, H, W) float {0, 1} -> edge ("edge") or distance ("dist") target, same shape.

    Returned on the mask's device (float dtype of the mask, else float32).
    """
    if mask.ndim != 4:
        raise ValueError(f"mask must be (B, C, H, W), got shape {tuple(mask.shape)}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    fn = edge_map if kind == "edge" else distance_map
    m = mask.detach().cpu().numpy()
    flat = m.reshape(-1, *m.shape[-2:])
    out = np.stack([fn(plane) for plane in flat]) if len(flat) else flat.astype(np.float32)
    target = out.reshape(m.shape).astype(np.float32)
    dtype = mask.dtype if mask.is_floating_point() else torch.float32
    return torch.from_numpy(target).to(device=mask.device, dtype=dtype)
