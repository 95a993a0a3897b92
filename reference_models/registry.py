"""The model registry: the six configurations of the paper's Table 3 by name."""

from __future__ import annotations

from torch import nn

from reference_models.config import TABLE3, ModelConfig, make_config
from reference_models.e2net import E2Net
from reference_models.r2unet import R2UNet


def list_models() -> list[str]:
    """Names of the configurations, in Table 3 order."""
    return list(TABLE3)


def build_model(config: ModelConfig) -> nn.Module:
    """The network for `config`: R2UNet (single branch) or E2Net (two branches)."""
    return E2Net(config) if config.two_branch else R2UNet(config)


def create_model(name: str, profile: str = "small", **overrides) -> nn.Module:
    """Build configuration `name` ("stage1", ..., "dist_dcff") in `profile` ("small"|"paper").

    `overrides` replace `ModelConfig` fields (e.g. `context=3`). The module has `.config`,
    `.in_channels`, `.encoders()` and returns a dict of logits (see r2unet.py, e2net.py).
    """
    return build_model(make_config(name, profile, **overrides))
