"""Small building blocks shared by R2UNet, DCFF and E2Net: conv-BN-ReLU, resizing, padding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STRIDE = 32  # total stride of the encoder: inputs are padded to a multiple of it


class ConvBNReLU(nn.Sequential):
    """k x k convolution (no bias), batch norm, ReLU; keeps the spatial size."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of `x` (B, C, h, w) to the spatial size of `like` (align_corners False)."""
    if x.shape[-2:] == like.shape[-2:]:
        return x
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def downsample_by(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Average-pool `x` (B, C, h, w) by an integer `factor` -> (B, C, h/factor, w/factor).

    Exact because every scale is a power of two of the padded input size.
    """
    return x if factor == 1 else F.avg_pool2d(x, factor)


def pad_to_stride(x: torch.Tensor, stride: int = STRIDE) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (B, C, H, W) at the bottom and right to multiples of `stride` by edge replication.

    Returns the padded tensor and the original (H, W) to crop back to. Replication keeps the
    windowed intensities in range (air stays -1) and adds no artificial border; padding only
    bottom/right keeps output pixel (y, x) aligned with input pixel (y, x).
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop (B, C, H', W') to the top-left (B, C, H, W) with (H, W) = `size`."""
    return x[..., : size[0], : size[1]]
