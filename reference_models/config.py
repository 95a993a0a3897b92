"""The configuration dataclass of a network (what to build; no torch).

A configuration is one row of the paper's Table 3 (what the network is and how it is
supervised) plus the sizes of one profile. The rows and the profiles themselves live in the
catalogue (`reference_models/registry.py`); `make_config` fills this dataclass from it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from reference_models.registry import check_row, get_model, get_profile, list_profiles

CONTEXTS = (1, 3, 5)


@dataclass(frozen=True)
class ModelConfig:
    """What to build. Widths follow the Res2Net-50 names (planes, base_width, scale).

    name: registry name; stage: 1 (whole slices) or 2 (liver crops); out_channels: 1 (liver)
    or 2 (liver, tumour); edge_target: "none" (single R2UNet) or the edge branch's
    supervision ("edge" binary edges, "dist" edge distance map); dcff: deep cross feature
    fusion between the branches; context: adjacent slices stacked as input channels
    (1 is the paper; 3 or 5 give 2.5D context); input_size: stage-1 crop / stage-2 resize
    side in pixels (the size training uses; the networks accept any H, W).
    """

    name: str
    stage: int
    out_channels: int
    edge_target: str
    dcff: bool
    context: int = 1
    input_size: int = 448
    profile: str = "paper"
    stem_channels: int = 64
    planes: tuple[int, ...] = (64, 128, 256, 512)
    layers: tuple[int, ...] = (3, 4, 6, 3)
    base_width: int = 26
    scale: int = 4
    decoder_channels: int = 32

    def __post_init__(self) -> None:
        check_row(self.stage, self.out_channels, self.edge_target, self.dcff)
        if self.context not in CONTEXTS:
            raise ValueError(f"context must be one of {CONTEXTS}, got {self.context}")
        if self.profile not in list_profiles():
            raise ValueError(f"profile must be one of {list_profiles()}, got {self.profile!r}")
        if len(self.planes) != 4 or len(self.layers) != 4:
            raise ValueError("planes and layers need one entry per Res2Net stage (4)")
        if min(self.layers) < 1 or self.scale < 2 or self.input_size < 1:
            raise ValueError("layers >= 1, scale >= 2 and input_size >= 1 are required")

    @property
    def two_branch(self) -> bool:
        """True for the E2Net variants (segmentation branch + edge branch)."""
        return self.edge_target != "none"

    @property
    def in_channels(self) -> int:
        """Input channels: one windowed CT slice per context slice."""
        return self.context

    def to_dict(self) -> dict:
        """Plain-JSON form (tuples as lists), e.g. for checkpoints and run metadata."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Inverse of `to_dict` (lists back to tuples); unknown keys raise ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config fields: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def make_config(name: str, profile: str = "small", **overrides) -> ModelConfig:
    """The configuration `name` in `profile`, with `ModelConfig` field `overrides` applied."""
    entry = get_model(name)
    prof = get_profile(profile)
    fields = dict(
        name=name,
        stage=entry.stage,
        out_channels=entry.out_channels,
        edge_target=entry.edge_target,
        dcff=entry.dcff,
        input_size=prof.input_size[entry.stage],
        profile=profile,
        **prof.widths,
    )
    return ModelConfig.from_dict({**fields, **overrides})
