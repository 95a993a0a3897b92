"""Training settings per profile: the paper's numbers, and a small profile for CPUs and CI.

=====================  ==========================  ==================================
setting                paper                       small
=====================  ==========================  ==================================
batch size (global)    32 (paper)                  8
learning rate          0.01 (paper)                0.03
epoch                  one pass over the plan      at most 25 steps (200 slices)
max epochs             100                         40
patience (epochs)      3                           4
plateau signal         validation loss (paper)     1 - per-slice validation Dice
stage-2 tumour share   1/3                         1/2
validation slices      all planned                 at most 160
loader workers         8 (CUDA) / 0 (CPU)          0
=====================  ==========================  ==================================

SGD with momentum 0.9; no weight decay (the paper names none). Every departure from the
paper is in the table of docs/training.md. Crop and resize sizes come from the model's config (``input_size``).
The per-profile values of the table live in the catalogue (`reference_models/registry.py`,
`Profile.train` and `Profile.loader_workers`); the shared ones are the defaults below.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


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
    from reference_models.registry import get_profile

    prof = get_profile(profile)
    base = TrainSettings(
        profile=profile, num_workers=prof.loader_workers[1 if cuda else 0], **prof.train
    )
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
