"""Where and how a network runs: device choice, mixed precision, batches, weights.

Shared by the trainer, the predictor and the benchmarks.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from e2net_eval.errors import InputError
from e2net_eval.training.distributed import DistInfo


def resolve_device(device: str, info: DistInfo | None = None) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; CUDA picks the local rank's card."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda, but torch sees no CUDA device")
        return torch.device("cuda", info.local_rank if info else 0)
    if device != "cpu":
        raise InputError(f"unknown device {device!r} (auto, cpu or cuda)")
    return torch.device("cpu")


#: CPU threads per profile when the user has not set OMP_NUM_THREADS. Measured on a 2-core
#: machine (`e2net-eval bench train`): the small profile's convolutions are too small to
#: split, two threads were 1.85x *slower* than one (dist_dcff, batch 8, 64x64); the paper
#: profile was 1.75x faster with two (stage1, batch 2, 448x448). None = torch's default.
CPU_THREADS = {"small": 1, "paper": None}


def configure_cpu_threads(device: torch.device, profile: str) -> int:
    """Set torch's CPU thread count for `profile` unless OMP_NUM_THREADS says otherwise."""
    if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        threads = CPU_THREADS.get(profile)
        if threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    return torch.get_num_threads()


def amp_setup(device: torch.device) -> tuple[Any, torch.amp.GradScaler | None]:
    """(autocast context factory, gradient scaler or None) for the device."""
    if device.type != "cuda":
        return nullcontext, None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler


def train_step(
    net: torch.nn.Module,
    cfg: Any,
    batch: dict[str, torch.Tensor],
    opt: torch.optim.Optimizer,
    autocast: Any,
    scaler: torch.amp.GradScaler | None,
) -> torch.Tensor:
    """One optimiser step on `batch` (forward under autocast, loss in float32); the loss."""
    from reference_models.losses import objective

    with autocast():
        outputs = net(batch["image"])
    outputs = {k: v.float() for k, v in outputs.items()}
    loss, _ = objective(cfg, outputs, batch["mask"], batch.get("edge"))
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    return loss


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of a model's parameters (sorted by name): equal weights, equal digest.

    BatchNorm running statistics are left out: under DDP each process keeps its own (rank
    0's are the ones saved), while the parameters of all replicas are identical.
    """
    h = hashlib.sha256()
    for name, tensor in sorted(model.named_parameters()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Move a batch dict to `device` (channels-last on CUDA)."""
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    return {k: v.to(device, non_blocking=True, memory_format=fmt) for k, v in batch.items()}


def load_backbone(model: torch.nn.Module, path: str | Path) -> int:
    """Load a local Res2Net-50 checkpoint into every encoder of `model` (strict per encoder).

    Returns the number of encoders loaded; a mismatching or unreadable file is an input error.
    """
    from reference_models.weights import load_backbone_weights

    encoders = model.encoders()
    for enc in encoders:
        try:
            load_backbone_weights(enc, path)
        except ValueError as exc:
            raise InputError(str(exc), path=path) from exc
    return len(encoders)
