"""Network weights: rebuild a trained configuration, load a backbone, digest parameters."""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

import reference_models
from e2net_eval.errors import InputError, ReadError
from e2net_eval.rundir import config_dir, weights_path
from e2net_eval.runtime.device import prepare_model
from e2net_eval.util.reading import decoding, readable_file
from reference_models.weights import load_backbone_weights


def load_trained(run_dir: str | Path, config: str, device: torch.device) -> torch.nn.Module:
    """Rebuild a configuration's network from a training run and load its best weights (else
    the last ones), in eval mode on `device`."""
    path = weights_path(run_dir, config)
    if path is None:
        raise InputError(
            f"configuration {config!r} has no weights in the run", path=config_dir(run_dir, config)
        )
    payload = load_data(path)
    require_keys(payload, ("model",), path)
    require_keys(payload, ("model_config",), path)  # every checkpoint since the first day
    with decoding(path, what="checkpoint"):  # not our checkpoint, or not this network's
        model = reference_models.build_model(
            reference_models.ModelConfig.from_dict(payload["model_config"])
        )
        model.load_state_dict(payload["model"])
    return prepare_model(model, device).eval()


def _legacy_numpy_globals() -> list[Any]:
    """What a NumPy array needs beyond torch's weights-only types: checkpoints written
    before the random states were stored as tensors hold NumPy's (a uint32 array).
    Rebuilding an array runs no code of the file's choosing."""
    core = getattr(np, "_core", None) or np.core  # NumPy 2 / NumPy 1
    found = [core.multiarray._reconstruct, np.ndarray, np.dtype]
    dtypes = getattr(np, "dtypes", None)  # NumPy >= 1.25
    return found + ([dtypes.UInt32DType] if dtypes is not None else [])


def _allowing(extra: list[Any]) -> contextlib.AbstractContextManager:
    """torch's allow-list for one load (torch >= 2.5); older torch loads without it, so
    only checkpoints written by this version (plain values and tensors) load there."""
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    return safe_globals(extra) if safe_globals is not None else contextlib.nullcontext()


#: How torch's weights-only unpickler names a callable it refused to import.
_REFUSED = re.compile(r"GLOBAL (\S+)")


def _refusal(exc: pickle.UnpicklingError) -> str | None:
    """Why torch's weights-only unpickler refused a file, in a few words (None: it did not
    refuse; the file is damaged)."""
    text = str(exc)
    if "Weights only load failed" not in text:
        return None
    found = _REFUSED.search(text)
    if found:
        return f"unpickling it would call {found.group(1)}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    detail = next((ln for ln in reversed(lines) if not ln.startswith("Check the doc")), "")
    return f"it is not tensors and plain values only ({detail[:120]})"


def load_data(path: str | Path, case: str | None = None, what: str = "checkpoint") -> dict:
    """A torch file's content read as data only: tensors and plain Python values.

    ``torch.load(weights_only=True)``: an object the file would build by calling code
    (``os.system``, any class) is refused, named, before anything runs -- run folders are
    shared and downloaded, so their files are data, never code. A missing, truncated or
    corrupt file, or one that does not hold a dict, is a `ReadError` naming it (exit 2).
    """
    readable_file(path, case, what)
    with decoding(path, case, what), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's note on pickle protocols: not the user's
        try:
            with _allowing(_legacy_numpy_globals()):
                payload = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            why = _refusal(exc)
            if why is None:
                raise
            raise ReadError(
                f"refused {what}: {why}; e2net-eval loads weights as data, never runs code "
                "from a file",
                case=case,
                path=path,
            ) from None
    if not isinstance(payload, dict):
        raise ReadError(
            f"not an e2net-eval {what} (holds a {type(payload).__name__})", case=case, path=path
        )
    return payload


def require_keys(
    payload: dict, keys: tuple[str, ...], path: str | Path, what: str = "checkpoint"
) -> None:
    """A `ReadError` naming the file and the first of `keys` that `payload` lacks."""
    missing = [k for k in keys if k not in payload]
    if missing:
        raise ReadError(
            f"incomplete {what}: no {missing[0]!r} entry ({len(missing)} of the "
            f"{len(keys)} required missing); not written by this e2net-eval, or damaged",
            path=path,
        )


def load_backbone(
    model: torch.nn.Module, source: str | Path | dict, path: str | Path | None = None
) -> int:
    """Load a local Res2Net-50 checkpoint (`source`: its path, or its state dict read from
    `path`) into every encoder of `model` (strict per encoder). Returns the number of
    encoders loaded; a mismatching or unreadable file is an input error naming it."""
    encoders = model.encoders()
    for enc in encoders:
        try:
            load_backbone_weights(enc, source)
        except ValueError as exc:
            prefix = "" if path is None else f"{model.config.name}: "
            raise InputError(f"{prefix}{exc}", path=path or source) from exc
    return len(encoders)


def check_backbone(path: str | Path, configs: list[str], profile: str) -> int:
    """Check that a backbone checkpoint loads into every encoder of every configuration of
    `configs` in `profile` (the file is read once); the number of encoders checked. A file
    that does not fit is an input error naming it, before anything is trained."""
    if not Path(path).is_file():
        raise InputError("backbone weights not found", path=path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or not a torch file
        raise InputError(f"cannot read backbone weights: {exc}", path=path) from exc
    return sum(
        load_backbone(reference_models.create_model(c, profile=profile), state, path)
        for c in configs
    )


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (a backbone checkpoint's identity in run records)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise InputError(f"cannot read backbone weights: {exc.strerror or exc}", path=path) from exc
    return h.hexdigest()


def backbone_record(path: str | Path | None) -> dict[str, str] | None:
    """What a run records about ``--backbone-weights``: the resolved path and the file's
    SHA-256 (None without a file)."""
    if path is None:
        return None
    return {"path": str(Path(path).resolve()), "sha256": file_sha256(path)}


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
