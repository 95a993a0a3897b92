"""Reference PyTorch networks of E2Net (MICCAI 2020): the six ablation configurations.

    from reference_models import create_model, list_models
    model = create_model("dist_dcff", profile="small", context=1)
    out = model(x)  # x (B, 1, H, W) -> {"seg", "s1", "edge"} logits (B, 2, H, W)

No dependency on `e2net_eval`.
"""

from __future__ import annotations

from reference_models.config import ModelConfig, make_config
from reference_models.losses import objective
from reference_models.registry import build_model, create_model, list_models
from reference_models.targets import edge_targets
from reference_models.weights import load_backbone_weights

__all__ = [
    "ModelConfig",
    "build_model",
    "create_model",
    "edge_targets",
    "list_models",
    "load_backbone_weights",
    "make_config",
    "objective",
]
