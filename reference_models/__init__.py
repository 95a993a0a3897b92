"""Reference PyTorch networks of E2Net (MICCAI 2020): the six ablation configurations.

    from reference_models import create_model, list_models
    model = create_model("dist_dcff", profile="small", context=1)
    out = model(x)  # x (B, 1, H, W) -> {"seg", "s1", "edge"} logits (B, 2, H, W)

The catalogue (`registry.py`: configurations and profiles; it imports nothing of the
package), `ModelConfig` and `make_config` (config.py) import no torch; `create_model`
(factory.py), `objective`, `edge_targets` and `load_backbone_weights` load their modules on
first use. No dependency on `e2net_eval`.
"""

from __future__ import annotations

import importlib

from reference_models.config import ModelConfig, make_config
from reference_models.factory import build_model, create_model
from reference_models.registry import (
    ModelEntry,
    Profile,
    get_model,
    get_profile,
    list_models,
    list_profiles,
    register_model,
    register_profile,
    stage1_name,
)

_LAZY = {
    "objective": "reference_models.losses",
    "edge_targets": "reference_models.targets",
    "load_backbone_weights": "reference_models.weights",
}

__all__ = [
    "ModelConfig",
    "ModelEntry",
    "Profile",
    "build_model",
    "create_model",
    "edge_targets",
    "get_model",
    "get_profile",
    "list_models",
    "list_profiles",
    "load_backbone_weights",
    "make_config",
    "objective",
    "register_model",
    "register_profile",
    "stage1_name",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'reference_models' has no attribute {name!r}")
