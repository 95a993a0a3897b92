"""Parameter counts and multiply-accumulates (MACs) of a network per input slice.

MACs are half the FLOPs torch's `FlopCounterMode` counts (convolutions and matrix products;
not batch norm, activations, pooling, interpolation or DCFF's products: docs/models.md), at
batch 1, on PyTorch's "meta" device: nothing is computed, so even the paper profile at
448 x 448 is counted instantly (a model not built on "meta" is copied there first).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of `module`."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def count_macs(model: nn.Module, height: int, width: int | None = None) -> int:
    """Multiply-accumulates of one forward pass of `model` on a (1, in_channels, H, W) slice."""
    width = height if width is None else width
    on_meta = all(p.device.type == "meta" for p in model.parameters())
    meta = model if on_meta else copy.deepcopy(model).to("meta")
    was_training = meta.training
    meta.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            meta(torch.zeros(1, model.in_channels, height, width, device="meta"))
    finally:
        meta.train(was_training)
    return int(counter.get_total_flops() // 2)


def describe(model: nn.Module, size: int | None = None) -> dict:
    """Summary of a built model: configuration, parameter counts and MACs per slice at
    `size` x `size` (default: the configuration's training input size)."""
    config = model.config
    size = config.input_size if size is None else size
    encoders = model.encoders()
    return {
        "name": config.name,
        "profile": config.profile,
        "stage": config.stage,
        "out_channels": config.out_channels,
        "outputs": ["seg", "s1", "edge"] if config.two_branch else ["seg"],
        "edge_target": config.edge_target,
        "dcff": config.dcff,
        "context": config.context,
        "input_size": size,
        "params": count_parameters(model),
        "encoder_params": sum(count_parameters(e) for e in encoders),
        "n_encoders": len(encoders),
        "macs": count_macs(model, size),
    }
