"""Slice datasets for the two stages, and the seeded plan of which slices an epoch visits.

Stage 1: every slice with liver plus `neg_ratio` times as many others, drawn anew each epoch,
as random `input_size` crops of the whole slice. Stage 2: every liver slice once plus tumour
slices drawn until `tumour_fraction` of the samples show tumour, as the liver box grown by a
random margin per side and resized. Every random choice is a pure function of (seed, epoch,
position): the plan is shuffled with ``SeedSequence([seed, TRAIN_PLAN, epoch])`` and the item
at position ``p`` draws from ``SeedSequence([seed, TRAIN_ITEM, epoch, p])``, so workers,
processes and resuming change nothing; validation has a fixed plan and fixed draws. Why
(and why no flips): docs/training.md ("Sampling and augmentation").
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from e2net_eval.runtime.geometry import crop_resize, grow_box, random_crop
from e2net_eval.runtime.orientation import context_indices
from e2net_eval.training.cache import CachedCase
from reference_models.targets import edge_targets

TRAIN_PLAN, VAL_PLAN, TRAIN_ITEM, VAL_ITEM = 1, 2, 3, 4

#: One planned sample: (case index, slice index, random-stream words).
Sample = tuple[int, int, tuple[int, ...]]


@dataclass(frozen=True)
class SliceSpec:
    """What a stage's samples look like (taken from the model's config and the profile)."""

    stage: int  # 1 or 2
    input_size: int  # stage 1 crop / stage 2 resize, pixels
    in_channels: int  # adjacent slices stacked as channels (odd)
    edge_target: str = "none"  # "none" | "edge" | "dist" (stage 2 only)
    margin: tuple[int, int] = (10, 60)  # stage 2 random box margin, pixels (scaled)
    neg_ratio: float = 0.5  # stage 1 non-liver slices per liver slice
    tumour_fraction: float = 0.0  # stage 2: at least this share of samples show tumour


def plan_epoch(cases: list[CachedCase], spec: SliceSpec, words: list[int]) -> np.ndarray:
    """The shuffled ``(N, 2)`` array of (case index, slice index) one epoch visits."""
    rng = np.random.default_rng(np.random.SeedSequence(words))
    liver = [(i, int(z)) for i, c in enumerate(cases) for z in c.liver_slices()]
    picks = list(liver)
    if spec.stage == 1 and spec.neg_ratio > 0:
        other = [(i, int(z)) for i, c in enumerate(cases) for z in c.other_slices()]
        n_neg = min(len(other), int(round(spec.neg_ratio * len(liver))))
        if n_neg:
            chosen = rng.choice(len(other), size=n_neg, replace=False)
            picks += [other[k] for k in sorted(chosen)]
    if spec.stage == 2 and spec.tumour_fraction > 0:
        picks += _tumour_draws(cases, len(liver), spec.tumour_fraction, rng)
    arr = np.asarray(picks, dtype=np.int64).reshape(-1, 2)
    return arr[rng.permutation(len(arr))]


def _tumour_draws(
    cases: list[CachedCase], n_liver: int, fraction: float, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """Extra tumour slices (drawn with replacement) that lift their share to `fraction`.

    With ``t`` of the ``n`` liver slices showing tumour, ``k = (f n - t) / (1 - f)`` extra
    draws make ``(t + k) / (n + k) = f``; none when the share is already reached or no
    training slice has tumour.
    """
    tumour = [(i, int(z)) for i, c in enumerate(cases) for z in c.tumour_slices()]
    if not tumour or not 0 < fraction < 1:
        return []
    k = int(np.ceil((fraction * n_liver - len(tumour)) / (1 - fraction)))
    if k <= 0:
        return []
    chosen = rng.integers(0, len(tumour), size=k)
    return [tumour[j] for j in chosen]


@dataclass(eq=False)
class SliceDataset(Dataset):
    """Items for a planned sample: ``{"image": (C, S, S), "mask": (K, S, S)[, "edge"]}``.

    ``K`` is 1 (liver) for stage 1 and 2 (liver = label >= 1, tumour = label == 2) for
    stage 2; ``edge`` (same shape as ``mask``) is added when the config has an edge target.
    Indexing takes a `Sample`, not an int (the batch sampler hands them out).
    """

    cases: list[CachedCase]
    spec: SliceSpec

    def _stack(self, case: CachedCase, z: int) -> np.ndarray:
        idx = context_indices(z, case.n_slices, self.spec.in_channels)
        return np.asarray(case.image[idx], dtype=np.float32)

    def __getitem__(self, sample: Sample) -> dict[str, torch.Tensor]:
        ci, z, words = sample
        case = self.cases[ci]
        rng = np.random.default_rng(np.random.SeedSequence(list(words)))
        image = self._stack(case, z)
        label = np.asarray(case.label[z : z + 1])
        size = self.spec.input_size
        if self.spec.stage == 1:
            image, label = random_crop(image, label, size, rng)
            mask = torch.from_numpy((label >= 1).astype(np.float32))
            return {"image": torch.from_numpy(np.ascontiguousarray(image)), "mask": mask}
        box = tuple(int(v) for v in case.boxes[z])
        if box[0] < 0:
            raise ValueError(f"case {case.case_id} slice {z}: stage 2 needs a liver slice")
        lo, hi = self.spec.margin
        margins = tuple(int(m) for m in rng.integers(lo, hi + 1, size=4))
        box = grow_box(box, margins, image.shape[-2:])
        img = crop_resize(torch.from_numpy(image), box, size, mode="bilinear")
        lab = crop_resize(torch.from_numpy(label.copy()), box, size, mode="nearest")
        mask = torch.cat([(lab >= 1), (lab == 2)], dim=0).float()
        item = {"image": img.contiguous(), "mask": mask}
        if self.spec.edge_target != "none":
            item["edge"] = edge_targets(mask[None], self.spec.edge_target)[0].float()
        return item


@dataclass(eq=False)
class PlanBatches(Sampler):
    """Batches of one epoch's plan for one process, starting at a given step.

    ``batch_size`` is the global batch; with ``world`` processes, rank ``r`` takes its
    ``batch_size // world`` share of every global batch. An epoch is ``steps`` batches.
    The plan is repeated cyclically when it is shorter than one batch.
    """

    plan: np.ndarray
    _: KW_ONLY
    batch_size: int
    steps: int
    item_words: list[int]
    start_step: int = 0
    rank: int = 0
    world: int = 1

    def __post_init__(self) -> None:
        if self.batch_size % self.world:
            raise ValueError(
                f"batch size {self.batch_size} is not divisible by {self.world} processes"
            )

    def __len__(self) -> int:
        return max(self.steps - self.start_step, 0)

    def __iter__(self):
        per_rank = self.batch_size // self.world
        n = len(self.plan)
        for step in range(self.start_step, self.steps):
            first = step * self.batch_size + self.rank * per_rank
            batch = []
            for pos in range(first, first + per_rank):
                ci, z = self.plan[pos % n]
                batch.append((int(ci), int(z), (*self.item_words, pos)))
            yield batch


def steps_per_epoch(n_samples: int, batch_size: int, cap: int | None) -> int:
    """Full batches in one pass over `n_samples` (at least 1), capped at `cap` if given."""
    steps = max(1, n_samples // batch_size)
    return min(steps, cap) if cap else steps


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack item dicts into batch dicts."""
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}
