"""Networks built from the catalogue: `create_model(name, profile)` (torch is imported here,
on first build, so the catalogue and `ModelConfig` stay light)."""

from __future__ import annotations

from reference_models.config import ModelConfig, make_config


def build_model(config: ModelConfig):
    """The network for `config`: R2UNet (single branch) or E2Net (two branches)."""
    if config.two_branch:
        from reference_models.e2net import E2Net

        return E2Net(config)
    from reference_models.r2unet import R2UNet

    return R2UNet(config)


def create_model(name: str, profile: str = "small", **overrides):
    """Build configuration `name` (see `list_models()`) in `profile` (see `list_profiles()`).

    `overrides` replace `ModelConfig` fields (e.g. `context=3`). The module has `.config`,
    `.in_channels`, `.encoders()` and returns a dict of logits (see r2unet.py, e2net.py).
    """
    return build_model(make_config(name, profile, **overrides))
