"""Res2Net encoder (Gao et al., TPAMI 2019), the backbone of R2UNet and E2Net, with the
parameter names of the published Res2Net-50 26w x 4s checkpoints (docs/models.md), so one
loads with `load_backbone_weights`. It returns the five feature maps F1..F5 of the paper:

    (B, in_channels, H, W) -> [F1 (B, stem, H/2, W/2), F2 (B, 4*planes[0], H/4, W/4),
                               F3 (B, 4*planes[1], H/8), F4 (B, 4*planes[2], H/16),
                               F5 (B, 4*planes[3], H/32)]

H and W must be multiples of 32 (the networks pad their input; see r2unet.py).
"""

from __future__ import annotations

import math

import torch
from torch import nn

EXPANSION = 4  # bottleneck output channels = EXPANSION * planes


class Bottle2neck(nn.Module):
    """Res2Net bottleneck: 1x1 conv, `scale` hierarchical 3x3 groups (each added to the
    previous group's output, except in a stage's first block, whose last group is
    average-pooled instead), 1x1 conv, residual."""

    def __init__(
        self, inplanes: int, planes: int, stride: int, base_width: int, scale: int, first: bool
    ) -> None:
        super().__init__()
        width = int(math.floor(planes * base_width / 64.0))
        outplanes = planes * EXPANSION
        self.width, self.scale, self.first = width, scale, first
        self.conv1 = nn.Conv2d(inplanes, width * scale, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width * scale)
        self.convs = nn.ModuleList(
            nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
            for _ in range(scale - 1)
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(scale - 1))
        self.pool = nn.AvgPool2d(3, stride=stride, padding=1) if first else None
        self.conv3 = nn.Conv2d(width * scale, outplanes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(outplanes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != outplanes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, outplanes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(outplanes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, inplanes, H, W) -> (B, 4*planes, H/stride, W/stride)."""
        out = self.relu(self.bn1(self.conv1(x)))
        groups = torch.split(out, self.width, dim=1)
        outs = []
        sp = groups[0]
        for s, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            if s > 0:
                sp = groups[s] if self.first else sp + groups[s]
            sp = self.relu(bn(conv(sp)))
            outs.append(sp)
        outs.append(self.pool(groups[-1]) if self.first else groups[-1])
        out = self.bn3(self.conv3(torch.cat(outs, dim=1)))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class Res2NetEncoder(nn.Module):
    """Res2Net stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) and four stages of bottlenecks.

    Paper profile: stem 64, planes (64, 128, 256, 512), layers (3, 4, 6, 3), base_width 26,
    scale 4 = Res2Net-50 26w x 4s without its classifier (23.65 M parameters).
    """

    def __init__(
        self,
        in_channels: int = 3,
        stem_channels: int = 64,
        planes: tuple[int, ...] = (64, 128, 256, 512),
        layers: tuple[int, ...] = (3, 4, 6, 3),
        base_width: int = 26,
        scale: int = 4,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.conv1 = nn.Conv2d(in_channels, stem_channels, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = stem_channels
        stages = []
        for i, (p, n) in enumerate(zip(planes, layers, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = []
            for k in range(n):
                blocks.append(
                    Bottle2neck(inplanes, p, stride if k == 0 else 1, base_width, scale, k == 0)
                )
                inplanes = p * EXPANSION
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.channels = [stem_channels] + [p * EXPANSION for p in planes]
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, in_channels, H, W) -> [F1..F5] at H/2..H/32 (H, W multiples of 32)."""
        f1 = self.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(self.maxpool(f1))
        f3 = self.layer2(f2)
        f4 = self.layer3(f3)
        f5 = self.layer4(f4)
        return [f1, f2, f3, f4, f5]
