"""Network weights: rebuild a trained configuration, load a backbone, digest parameters."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from e2net_eval.errors import InputError
from e2net_eval.rundir import config_dir, weights_path
from e2net_eval.runtime.device import prepare_model


def load_trained(run_dir: str | Path, config: str, device: torch.device) -> torch.nn.Module:
    """Rebuild a configuration's network from a training run and load its best weights (else
    the last ones), in eval mode on `device`."""
    import reference_models

    path = weights_path(run_dir, config)
    if path is None:
        raise InputError(
            f"configuration {config!r} has no weights in the run", path=config_dir(run_dir, config)
        )
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if "model_config" in payload:
        cfg = reference_models.ModelConfig.from_dict(payload["model_config"])
        model = reference_models.build_model(cfg)
    else:
        model = reference_models.create_model(payload["config_name"], profile=payload["profile"])
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
