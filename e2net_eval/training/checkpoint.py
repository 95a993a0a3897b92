"""Checkpoints: everything a killed run needs to continue bit for bit, written atomically.

A checkpoint holds the model, optimizer, schedule and gradient-scaler states, the epoch and
the step inside it (the sampler's position: the plan itself is a function of the seed and
epoch), and the Python, NumPy and torch (CPU and CUDA) random states.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from e2net_eval.errors import ReadError
from e2net_eval.util.atomic import atomic_path
from e2net_eval.util.reading import decoding, readable_file


def rng_states() -> dict[str, Any]:
    """Every random state a training step can touch."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict[str, Any]) -> None:
    """Restore what `rng_states` saved (CUDA states only where CUDA is present)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: str | Path, payload: dict[str, Any]) -> None:
    """Write `payload` with torch.save under a temporary name, then rename onto `path`."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load(path: str | Path, case: str | None = None) -> dict[str, Any]:
    """Read a checkpoint written by `save` (on the CPU; callers move tensors).

    A missing, truncated or corrupt file is a `ReadError` naming it (exit 2), not a
    traceback from torch's zip reader or the unpickler.
    """
    readable_file(path, case, "checkpoint")
    with decoding(path, case, "checkpoint"):
        payload = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict):
        raise ReadError(
            f"not an e2net-eval checkpoint (holds a {type(payload).__name__})", path=path
        )
    return payload


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model
