"""Network weights: rebuild a trained configuration, load a backbone, digest parameters."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from e2net_eval.errors import InputError
from e2net_eval.rundir import config_dir, weights_path
from e2net_eval.runtime.device import prepare_model
from e2net_eval.util.reading import decoding, readable_file


def load_trained(run_dir: str | Path, config: str, device: torch.device) -> torch.nn.Module:
    """Rebuild a configuration's network from a training run and load its best weights (else
    the last ones), in eval mode on `device`."""
    import reference_models

    path = weights_path(run_dir, config)
    if path is None:
        raise InputError(
            f"configuration {config!r} has no weights in the run", path=config_dir(run_dir, config)
        )
    readable_file(path, what="checkpoint")
    with decoding(path, what="checkpoint"):  # truncated, corrupt, or not our checkpoint
        payload = torch.load(path, map_location="cpu", weights_only=False)
        if "model_config" in payload:
            cfg = reference_models.ModelConfig.from_dict(payload["model_config"])
            model = reference_models.build_model(cfg)
        else:
            model = reference_models.create_model(
                payload["config_name"], profile=payload["profile"]
            )
        model.load_state_dict(payload["model"])
    return prepare_model(model, device).eval()


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


def check_backbone(path: str | Path, configs: list[str], profile: str) -> int:
    """Check that a backbone checkpoint loads into every encoder of every configuration of
    `configs` in `profile` (the file is read once); the number of encoders checked. A file
    that does not fit is an input error naming it, before anything is trained."""
    import reference_models
    from reference_models.weights import load_backbone_weights

    if not Path(path).is_file():
        raise InputError("backbone weights not found", path=path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or not a torch file
        raise InputError(f"cannot read backbone weights: {exc}", path=path) from exc
    n = 0
    for config in configs:
        model = reference_models.create_model(config, profile=profile)
        for encoder in model.encoders():
            try:
                load_backbone_weights(encoder, state)
            except ValueError as exc:
                raise InputError(f"{config}: {exc}", path=path) from exc
            n += 1
    return n


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
