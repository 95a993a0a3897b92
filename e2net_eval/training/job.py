"""One training job: what `train` is asked to do (configuration, profile, limits, overrides,
folders) and the hyper-parameters it trains with.

SGD with momentum 0.9; no weight decay (the paper names none). The per-profile values live in
the catalogue (`reference_models/registry.py`, `Profile.train` and `Profile.loader_workers`),
the shared ones are the defaults of `TrainSettings`; docs/training.md tabulates both profiles
and every departure from the paper. Crop and resize sizes come from the model's config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path

from e2net_eval.errors import InputError
from reference_models.registry import get_profile, list_models, list_profiles


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of one training run (recorded in ``RUN/<config>/settings.json``)."""

    profile: str
    batch_size: int
    steps_per_epoch: int | None  # None: one full pass over the epoch's plan
    max_epochs: int
    patience: int
    max_val_samples: int | None
    num_workers: int
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_factor: float = 0.1
    lr_decreases: int = 2
    plateau_threshold: float = 1e-4
    neg_ratio: float = 0.5
    tumour_fraction: float = 1 / 3  # stage 2: share of samples with tumour (nnU-Net's 0.33)
    plateau_on: str = "val_loss"  # "val_loss" (the paper) or "val_dice": schedule, best.pt
    margin_px: tuple[int, int] = (10, 60)  # stage 2 random margin at 256x256, scaled

    def to_dict(self) -> dict:
        return asdict(self)


def settings_for(profile: str, *, cuda: bool = False, **overrides) -> TrainSettings:
    """The settings of `profile` (catalogue: `Profile.train`, `Profile.loader_workers`),
    with `overrides` (None values ignored) applied."""
    prof = get_profile(profile)
    base = TrainSettings(
        profile=profile, num_workers=prof.loader_workers[1 if cuda else 0], **prof.train
    )
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


#: The `TrainJob` fields that override a profile's `TrainSettings` value when not None.
SETTINGS_OVERRIDES = (
    "batch_size",
    "steps_per_epoch",
    "max_epochs",
    "num_workers",
    "max_val_samples",
)


@dataclass(frozen=True)
class TrainJob:
    """One invocation of `train`: what to train, where, with which limits and overrides.

    None means the profile's value (the `SETTINGS_OVERRIDES`) or the configuration's
    (context)."""

    config: str
    data_root: Path | None
    run_dir: Path | None
    split: str | Path | None = None
    split_seed: int = 0
    profile: str = "small"
    max_steps: int | None = None
    max_epochs: int | None = None
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    force: bool = False
    batch_size: int | None = None
    steps_per_epoch: int | None = None
    backbone_weights: str | Path | None = None
    cache_dir: str | Path | None = None  # None: RUN/cache (another run's cache may be shared)
    num_workers: int | None = None
    max_val_samples: int | None = None
    context: int | None = None
    progress: bool = True

    def settings(self, cuda: bool) -> TrainSettings:
        """The profile's hyper-parameters with this job's overrides."""
        overrides = {k: getattr(self, k) for k in SETTINGS_OVERRIDES}
        return settings_for(self.profile, cuda=cuda, **overrides)

    def checked(self) -> TrainJob:
        """This job with its folders as paths; an input error for an unknown configuration
        or profile."""
        if self.config not in list_models():
            raise InputError(f"unknown configuration {self.config!r}; one of {list_models()}")
        if self.profile not in list_profiles():
            raise InputError(f"unknown profile {self.profile!r}; one of {list_profiles()}")
        return dataclasses.replace(self, data_root=Path(self.data_root), run_dir=Path(self.run_dir))
