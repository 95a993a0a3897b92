"""Two-branch networks of stage 2 (paper Fig. 2b-c): "+ edge/dist" and E2Net ("+ DCFF").

    (B, in_channels, H, W) -> {"seg": s2, "s1": s1, "edge": e}, each logits (B, out_channels, H, W)

Two R2UNets with their own weights (segmentation and edge branch; the edge branch predicts
one edge map per output channel), optional DCFF between their compressed features, and s2
(`seg`, the output used for inference) from the last decoder features of both, concatenated,
through a 3x3 conv-BN-ReLU and a 1x1 head (docs/models.md, "Two branches and fusion").
"""

from __future__ import annotations

import torch
from torch import nn

from reference_models.blocks import ConvBNReLU, crop_to, pad_to_stride, upsample_to
from reference_models.config import ModelConfig
from reference_models.dcff import DCFF
from reference_models.r2unet import N_SCALES, R2UNet
from reference_models.res2net import Res2NetEncoder


class E2Net(nn.Module):
    """Segmentation branch + edge branch, optional DCFF, fusion by concatenation."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not config.two_branch:
            raise ValueError(f"{config.name}: E2Net needs an edge target, got 'none'")
        self.config = config
        self.in_channels = config.in_channels
        d = config.decoder_channels
        self.seg_branch = R2UNet(config)
        self.edge_branch = R2UNet(config)
        self.dcff = DCFF(N_SCALES, d) if config.dcff else None
        self.fuse = ConvBNReLU(2 * d, d)
        self.fuse_head = nn.Conv2d(d, config.out_channels, 1)

    def encoders(self) -> list[Res2NetEncoder]:
        """The Res2Net encoders (segmentation branch, edge branch)."""
        return [self.seg_branch.encoder, self.edge_branch.encoder]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, in_channels, H, W) -> {"seg": s2, "s1": s1, "edge": e} logits (B, out, H, W)."""
        padded, size = pad_to_stride(x)
        seg_feats = self.seg_branch.features(padded)
        edge_feats = self.edge_branch.features(padded)
        if self.dcff is not None:
            seg_feats, edge_feats = self.dcff(seg_feats, edge_feats)
        seg_last = self.seg_branch.decode(seg_feats)
        edge_last = self.edge_branch.decode(edge_feats)
        fused = self.fuse(torch.cat([seg_last, edge_last], dim=1))
        return {
            "seg": crop_to(upsample_to(self.fuse_head(fused), padded), size),
            "s1": self.seg_branch.logits(seg_last, padded, size),
            "edge": self.edge_branch.logits(edge_last, padded, size),
        }
