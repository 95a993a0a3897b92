"""R2UNet (paper section 2, Fig. 2a): Res2Net encoder, 32-channel compression, UNet decoder.

    (B, in_channels, H, W) -> {"seg": logits (B, out_channels, H, W)}

Each F^i is compressed to D = `decoder_channels` (1x1 then 3x3 conv-BN-ReLU), the decoder
goes up from C5 (bilinear x2, concatenation with C^i, two 3x3 conv-BN-ReLU) to H/2, and a 1x1
head's logits are upsampled x2. Any H, W: the input is padded (edge replication,
bottom/right) to a multiple of 32 and the logits cropped back, so output pixel (y, x) is
input pixel (y, x). Details and choices: docs/models.md ("R2UNet").
"""

from __future__ import annotations

import torch
from torch import nn

from reference_models.blocks import ConvBNReLU, crop_to, pad_to_stride, upsample_to
from reference_models.config import ModelConfig
from reference_models.res2net import Res2NetEncoder

N_SCALES = 5


class Compress(nn.Sequential):
    """F^i (B, C_i, h, w) -> (B, D, h, w): 1x1 then 3x3 conv, each with BN + ReLU."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__(ConvBNReLU(in_channels, channels, 1), ConvBNReLU(channels, channels, 3))


class Decoder(nn.Module):
    """UNet-like decoder over five D-channel scales -> the last feature (B, D, H/2, W/2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # levels[k] merges scale (N_SCALES - 1 - k), i.e. 4, 3, 2, 1 (1-based scale index).
        self.levels = nn.ModuleList(
            nn.Sequential(ConvBNReLU(2 * channels, channels), ConvBNReLU(channels, channels))
            for _ in range(N_SCALES - 1)
        )

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """[C1..C5] each (B, D, H/2^i, W/2^i) -> (B, D, H/2, W/2)."""
        d = feats[-1]
        for level, skip in zip(self.levels, reversed(feats[:-1]), strict=True):
            d = level(torch.cat([upsample_to(d, skip), skip], dim=1))
        return d


class R2UNet(nn.Module):
    """One branch: encoder, compression, decoder and a 1x1 logit head.

    E2Net uses two of these (segmentation and edge branch, own weights) through the
    `features`, `decode` and `logits` steps; alone it is the stage-1 and baseline network.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.in_channels = config.in_channels
        self.encoder = Res2NetEncoder(
            in_channels=config.in_channels,
            stem_channels=config.stem_channels,
            planes=config.planes,
            layers=config.layers,
            base_width=config.base_width,
            scale=config.scale,
        )
        d = config.decoder_channels
        self.compress = nn.ModuleList(Compress(c, d) for c in self.encoder.channels)
        self.decoder = Decoder(d)
        self.head = nn.Conv2d(d, config.out_channels, 1)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Padded input (B, in_channels, H, W) -> compressed [C1..C5], (B, D, H/2^i, W/2^i)."""
        return [c(f) for c, f in zip(self.compress, self.encoder(x), strict=True)]

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """[C1..C5] -> last decoder feature (B, D, H/2, W/2)."""
        return self.decoder(feats)

    def logits(self, last: torch.Tensor, padded: torch.Tensor, size: tuple[int, int]):
        """Last feature (B, D, H/2, W/2) -> logits (B, out_channels, H, W) cropped to `size`."""
        return crop_to(upsample_to(self.head(last), padded), size)

    def encoders(self) -> list[Res2NetEncoder]:
        """The Res2Net encoders of this network (one), e.g. to load ImageNet weights."""
        return [self.encoder]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, in_channels, H, W) -> {"seg": logits (B, out_channels, H, W)}."""
        padded, size = pad_to_stride(x)
        last = self.decode(self.features(padded))
        return {"seg": self.logits(last, padded, size)}
