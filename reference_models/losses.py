"""Training objectives of the paper (eqs. 1-3), on logits.

BCE (eq. 1) from logits, mean-reduced over pixels, channels and images; soft IoU (eq. 2) on
sigmoid probabilities per channel over the whole batch, smoothing 1, averaged over the
channels. Stage 1 and the baseline: IoU + BCE; two-branch models (eq. 3): IoU + BCE on s1
and on s2 plus 4 x BCE of the edge output against the configuration's edge target. Why the
mean and why over the batch: docs/models.md ("Losses" and the departures table).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reference_models.config import ModelConfig
from reference_models.targets import edge_targets

IOU_SMOOTH = 1.0
EDGE_WEIGHT = 4.0  # weight of the edge term in eq. 3


def bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean binary cross entropy of logits (B, C, H, W) against targets in [0, 1]."""
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))


def iou_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = IOU_SMOOTH):
    """Soft IoU loss (eq. 2) of (B, C, H, W) per channel over the batch, averaged over the
    channels; see the module docstring."""
    p = torch.sigmoid(logits)
    g = target.to(p.dtype)
    dims = (0, *range(2, p.ndim))
    inter = (g * p).sum(dim=dims)
    union = (g + p - g * p).sum(dim=dims)
    return (1.0 - (inter + smooth) / (union + smooth)).mean()


def _check(name: str, logits: torch.Tensor, target: torch.Tensor) -> None:
    if logits.shape != target.shape:
        raise ValueError(
            f"{name}: output {tuple(logits.shape)} and target {tuple(target.shape)} differ"
        )


def objective(
    config: ModelConfig,
    outputs: dict[str, torch.Tensor],
    mask: torch.Tensor,
    edge_target: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The configuration's loss and its parts (floats, for logging).

    outputs: the model's dict of logits, each (B, out_channels, H, W); mask: ground truth
    (B, out_channels, H, W) in {0, 1} (liver; or liver, tumour); edge_target: (B,
    out_channels, H, W) in [0, 1] for two-branch models (computed from `mask` if None).
    Parts: stage 1 / baseline {"iou", "bce", "total"}; two-branch {"iou_s1", "bce_s1",
    "iou_s2", "bce_s2", "bce_edge", "total"} (bce_edge unweighted; total includes 4x).
    """
    mask = mask.to(outputs["seg"].dtype)
    _check("seg", outputs["seg"], mask)
    if not config.two_branch:
        iou, bce = iou_loss(outputs["seg"], mask), bce_loss(outputs["seg"], mask)
        loss = iou + bce
        return loss, {"iou": iou.item(), "bce": bce.item(), "total": loss.item()}
    if edge_target is None:
        edge_target = edge_targets(mask, config.edge_target)
    _check("s1", outputs["s1"], mask)
    _check("edge", outputs["edge"], edge_target)
    parts_t = {
        "iou_s1": iou_loss(outputs["s1"], mask),
        "bce_s1": bce_loss(outputs["s1"], mask),
        "iou_s2": iou_loss(outputs["seg"], mask),
        "bce_s2": bce_loss(outputs["seg"], mask),
        "bce_edge": bce_loss(outputs["edge"], edge_target),
    }
    loss = (
        parts_t["iou_s1"]
        + parts_t["bce_s1"]
        + parts_t["iou_s2"]
        + parts_t["bce_s2"]
        + EDGE_WEIGHT * parts_t["bce_edge"]
    )
    parts = {k: v.item() for k, v in parts_t.items()}
    parts["total"] = loss.item()
    return loss, parts
