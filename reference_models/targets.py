"""Supervision of the edge branch (paper section 2): binary edge maps and edge distance maps,
per image and channel on the crop the network sees (scipy, on the CPU).

Edge: E = M AND NOT erode(M), 4-neighbourhood erosion; pixels beyond the image border count
as object, so a crop cutting through an organ draws no edge there. Distance map, with D the
Euclidean distance (pixels) to the nearest edge pixel:

    T(x)  = M(x) * (1 - D(x) M(x) / max_y D(y) M(y))

1 on the edge, 0 at the deepest object pixel and outside the object. The degenerate cases and
the departure from the paper's formula: docs/models.md ("Targets").
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
