"""Where and how a network runs: device choice, CPU threads, mixed precision, batches.

The one policy for training, inference and the benchmarks: `auto` is CUDA when present;
on CUDA, bf16 autocast where the card has it (else fp16, with a gradient scaler when
training); on the CPU, float32 and the profile's thread count; on both, channels-last
tensors (`memory_format`).
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from typing import Any

import torch

from e2net_eval.errors import InputError
from e2net_eval.runtime import DEVICE_HELP
from reference_models.registry import get_profile


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` -> card `local_rank` (torchrun's
    local rank, 0 otherwise); ``cuda:N`` -> card N (an input error if it does not exist)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return torch.device("cpu")
    kind, sep, index = device.partition(":")
    if kind != "cuda" or (sep and not index.isdigit()):
        raise InputError(f"unknown device {device!r} ({DEVICE_HELP})")
    if not torch.cuda.is_available():
        raise InputError(f"--device {device}, but torch sees no CUDA device")
    card = int(index) if sep else local_rank
    if card >= torch.cuda.device_count():
        raise InputError(
            f"--device {device}, but torch sees {torch.cuda.device_count()} CUDA device(s)"
        )
    return torch.device("cuda", card)


def configure_cpu_threads(device: torch.device, profile: str) -> int:
    """Set torch's CPU thread count for `profile` (catalogue: `Profile.cpu_threads`) unless
    OMP_NUM_THREADS says otherwise; return the count in use."""
    if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        threads = get_profile(profile).cpu_threads
        if threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    return torch.get_num_threads()


def half_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype on `device`: bf16 where the card has it, else fp16; None on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device) -> Any:
    """A context manager: autocast to `half_dtype` on CUDA, nothing on the CPU."""
    dtype = half_dtype(device)
    return nullcontext() if dtype is None else torch.autocast("cuda", dtype=dtype)


def amp_setup(device: torch.device) -> tuple[Any, torch.amp.GradScaler | None]:
    """(autocast context factory, gradient scaler or None) for training on `device`."""
    dtype = half_dtype(device)
    if dtype is None:
        return nullcontext, None
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler


def memory_format(device: torch.device) -> torch.memory_format:
    """Channels-last, on CUDA and on the CPU: faster convolutions on both (CPU, small
    profile, one thread: `e2net-eval bench train` reports the speed-up over contiguous
    tensors in the same run; docs/training.md, "Speed")."""
    return torch.channels_last


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Move a batch dict to `device` in its memory format."""
    fmt = memory_format(device)
    return {k: v.to(device, non_blocking=True, memory_format=fmt) for k, v in batch.items()}


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move a network to `device` in its memory format (`memory_format`)."""
    return model.to(device).to(memory_format=memory_format(device))
