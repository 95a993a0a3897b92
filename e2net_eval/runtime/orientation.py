"""Axial slices in one canonical orientation (RAS+ by the affine; a slice is
``canonical[:, :, k]``), and the way back to the array as stored, so the network sees every
case the same way round and predictions sit voxel for voxel on the reference grid
(docs/training.md, "Slices and orientation").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from e2net_eval.util.imports import import_nibabel

orientations = import_nibabel().orientations

_RAS = orientations.axcodes2ornt(("R", "A", "S"))


@dataclass(frozen=True)
class Orientation:
    """How one stored array maps onto the canonical RAS+ array.

    ``to_canonical`` and ``from_canonical`` are nibabel orientation arrays (axis, flip).
    """

    to_canonical: np.ndarray
    from_canonical: np.ndarray

    @classmethod
    def from_affine(cls, affine: np.ndarray) -> Orientation:
        """The orientation of an array whose voxel-to-world matrix is `affine` (4x4)."""
        affine = np.asarray(affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise ValueError(f"affine must be a finite 4x4 matrix, got {affine!r}")
        src = orientations.io_orientation(affine)
        return cls(
            to_canonical=orientations.ornt_transform(src, _RAS),
            from_canonical=orientations.ornt_transform(_RAS, src),
        )

    @property
    def slice_axis(self) -> int:
        """The stored array axis that becomes the canonical superior (slice) axis."""
        return next(axis for axis, (target, _) in enumerate(self.to_canonical) if target == 2)

    def slices(self, volume: np.ndarray) -> np.ndarray:
        """Stored volume -> contiguous stack of canonical axial slices ``(Z, X, Y)``."""
        # (X, Y, Z), a view if it can
        canonical = orientations.apply_orientation(volume, self.to_canonical)
        return np.ascontiguousarray(np.moveaxis(canonical, 2, 0))


def _torch_steps(ornt: np.ndarray) -> tuple[list[int], list[int]]:
    """(axes to flip first, then the permutation) that apply orientation `ornt` to a tensor."""
    flips = [axis for axis, (_, flip) in enumerate(ornt) if flip == -1]
    perm = [int(np.flatnonzero(ornt[:, 0] == k)[0]) for k in range(len(ornt))]
    return flips, perm


def canonical_tensor(orient: Orientation, volume: torch.Tensor) -> torch.Tensor:
    """`Orientation.slices` for a torch tensor on any device: ``(A, B, C)`` -> ``(Z, X, Y)``."""
    flips, perm = _torch_steps(orient.to_canonical)
    t = volume.flip(flips) if flips else volume
    return t.permute(*perm).permute(2, 0, 1).contiguous()


def stored_tensor(orient: Orientation, stack: torch.Tensor) -> torch.Tensor:
    """Inverse of `canonical_tensor`: canonical slices ``(Z, X, Y)`` -> stored ``(A, B, C)``."""
    flips, perm = _torch_steps(orient.from_canonical)
    t = stack.permute(1, 2, 0)
    t = t.flip(flips) if flips else t
    return t.permute(*perm).contiguous()


def context_indices(z: int, n_slices: int, n_channels: int) -> list[int]:
    """Indices of the slices stacked as channels around `z` (1 -> [z], 3 -> [z-1, z, z+1],
    ...), clamped at the volume ends. The centre slice is the one whose labels are the
    target; an even count is rejected."""
    if n_channels < 1 or n_channels % 2 == 0:
        raise ValueError(f"context must be an odd number of slices, got {n_channels}")
    half = n_channels // 2
    return [min(max(z + d, 0), n_slices - 1) for d in range(-half, half + 1)]
