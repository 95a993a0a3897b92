"""Deep cross feature fusion (DCFF, paper section 2, Fig. 2c-d); D = decoder channels.

For a target scale i (1..5) of branch A, refined with the other branch B's scales j >= i:

    G_j = conv_j( combine( down_{2^(j-i)}(A_i), B_j ) )          for j = i..5
    h_5 = G_5;   h_j = chain_j( combine( up(h_{j+1}), G_j ) )     for j = 4..i
    A'_i = A_i + h_i

combine is concatenation (2D -> D conv) refining the segmentation branch and element-wise
product (D -> D conv) refining the edge branch; conv_j and chain_j are one 3x3 conv-BN-ReLU
each, with weights per scale; down is average pooling, up bilinear; both directions read the
unrefined features. The choices the paper leaves open: docs/models.md ("DCFF").
"""

from __future__ import annotations

import torch
from torch import nn

from reference_models.blocks import ConvBNReLU, downsample_by, upsample_to

MODES = ("concat", "product")


class _ScaleRefine(nn.Module):
    """Refines one scale i of branch A with scales i..n-1 of branch B (0-based indices)."""

    def __init__(self, i: int, n_scales: int, channels: int, mode: str) -> None:
        super().__init__()
        self.i, self.mode = i, mode
        c_in = 2 * channels if mode == "concat" else channels
        n = n_scales - i  # scales j = i..n_scales-1
        self.combine = nn.ModuleList(ConvBNReLU(c_in, channels) for _ in range(n))
        self.chain = nn.ModuleList(ConvBNReLU(c_in, channels) for _ in range(n - 1))

    def _join(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, b], dim=1) if self.mode == "concat" else a * b

    def forward(self, a_i: torch.Tensor, b: list[torch.Tensor]) -> torch.Tensor:
        """a_i (B, D, h, w), b = [B_1..B_n] -> refined a_i (B, D, h, w)."""
        g = [
            conv(self._join(downsample_by(a_i, 2 ** (j - self.i)), b[j]))
            for conv, j in zip(self.combine, range(self.i, len(b)), strict=True)
        ]
        h = g[-1]
        for k in range(len(g) - 2, -1, -1):  # j = n-2 .. i
            h = self.chain[k](self._join(upsample_to(h, g[k]), g[k]))
        return a_i + h


class CrossRefine(nn.Module):
    """Refines every scale of one branch with the other branch, in one combine `mode`."""

    def __init__(self, n_scales: int, channels: int, mode: str) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.scales = nn.ModuleList(
            _ScaleRefine(i, n_scales, channels, mode) for i in range(n_scales)
        )

    def forward(self, a: list[torch.Tensor], b: list[torch.Tensor]) -> list[torch.Tensor]:
        """[A_1..A_n], [B_1..B_n] (B, D, H/2^i, W/2^i) -> refined [A'_1..A'_n]."""
        return [refine(a_i, b) for refine, a_i in zip(self.scales, a, strict=True)]


class DCFF(nn.Module):
    """Both directions: segmentation features by concatenation, edge features by product."""

    def __init__(self, n_scales: int, channels: int) -> None:
        super().__init__()
        self.seg = CrossRefine(n_scales, channels, "concat")
        self.edge = CrossRefine(n_scales, channels, "product")

    def forward(
        self, seg: list[torch.Tensor], edge: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Compressed features of both branches -> refined features of both branches."""
        return self.seg(seg, edge), self.edge(edge, seg)
