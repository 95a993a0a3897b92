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
from e2net_eval.runtime.weights import load_data, require_keys
from e2net_eval.util.atomic import atomic_path

#: What `load` requires in a checkpoint (``checkpoint_last.pt``) to resume from it: whose
#: run it is, the training state and position, the random states and the settings.
_IDENTITY = ("config_name", "profile", "seed")
_STATE = ("model", "optimizer", "plateau", "epoch", "step_in_epoch", "step", "best")
REQUIRED = (*_IDENTITY, *_STATE, "rng", "settings")
RNG_REQUIRED = ("python", "numpy", "torch")


def rng_states() -> dict[str, Any]:
    """Every random state a training step can touch, as tensors and plain values (so a
    checkpoint loads with ``weights_only=True``: NumPy's key array goes as an int64 tensor)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "kind": str(kind),
            "key": torch.from_numpy(key.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _numpy_state(saved: Any) -> Any:
    """NumPy's state tuple from what `rng_states` saved (older checkpoints: the tuple)."""
    if not isinstance(saved, dict):
        return saved
    key = np.asarray(saved["key"].numpy(), dtype=np.uint32)
    return (saved["kind"], key, saved["pos"], saved["has_gauss"], saved["cached_gaussian"])


def set_rng_states(state: dict[str, Any]) -> None:
    """Restore what `rng_states` saved (CUDA states only where CUDA is present)."""
    random.setstate(state["python"])
    np.random.set_state(_numpy_state(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: str | Path, payload: dict[str, Any]) -> None:
    """Write `payload` with torch.save under a temporary name, then rename onto `path`."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load(path: str | Path, case: str | None = None) -> dict[str, Any]:
    """Read a checkpoint written by `save` (on the CPU; callers move tensors) as data only.

    Loaded with ``weights_only=True`` (`load_data`): a file that would run code is refused
    before anything runs. A missing, truncated or corrupt file, or one without an entry
    resuming needs, is a `ReadError` naming it (exit 2), not a traceback.
    """
    payload = load_data(path, case)
    require_keys(payload, REQUIRED, path)
    if not isinstance(payload["rng"], dict):
        raise ReadError("incomplete checkpoint: 'rng' is not a dict of random states", path=path)
    require_keys(payload["rng"], RNG_REQUIRED, path, what="checkpoint's random states")
    return payload
