"""Each configuration overfits one small batch of phantom-like crops (proof the parts learn).

The crops are built here (an ellipse liver with a dark round tumour, noise, windowed to
[-1, 1]) so the test does not depend on the data layer.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reference_models import create_model, list_models
from reference_models.losses import objective
from reference_models.targets import edge_targets

SIZE = 64
BATCH = 4
MAX_STEPS = 120
DICE_GOAL = 0.9


def phantom_crops(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, size, size) windowed image in [-1, 1] and (n, 2, size, size) liver/tumour masks.

    Liver: a random ellipse (HU ~ 100), tumour: a disc inside it (HU ~ 30), background fat
    and muscle (HU ~ -80); Gaussian noise (sd 15 HU); windowed from [-100, 240] to [-1, 1].
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    images, masks = [], []
    for _ in range(n):
        cy, cx = rng.uniform(0.4, 0.6, 2) * size
        ry, rx = rng.uniform(0.22, 0.35, 2) * size
        angle = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = dy * np.cos(angle) + dx * np.sin(angle)
        v = -dy * np.sin(angle) + dx * np.cos(angle)
        liver = (u / ry) ** 2 + (v / rx) ** 2 <= 1.0
        r = rng.uniform(0.06, 0.1) * size
        ty = cy + rng.uniform(-0.3, 0.3) * ry
        tx = cx + rng.uniform(-0.3, 0.3) * rx
        tumour = ((yy - ty) ** 2 + (xx - tx) ** 2 <= r**2) & liver
        hu = np.full((size, size), -80.0)
        hu[liver] = 100.0
        hu[tumour] = 30.0
        hu += rng.normal(0, 15.0, hu.shape)
        images.append((np.clip(hu, -100, 240) + 100) / 340 * 2 - 1)
        masks.append(np.stack([liver, tumour]))
    x = torch.tensor(np.stack(images)[:, None], dtype=torch.float32)
    m = torch.tensor(np.stack(masks), dtype=torch.float32)
    return x, m


def dice_per_channel(logits: torch.Tensor, mask: torch.Tensor) -> list[float]:
    """Dice of (logits > 0) against mask over the batch, per channel."""
    pred = (logits > 0).float()
    inter = (pred * mask).sum(dim=(0, 2, 3))
    total = pred.sum(dim=(0, 2, 3)) + mask.sum(dim=(0, 2, 3))
    return (2 * inter / total.clamp(min=1)).tolist()


def overfit(name: str, max_steps: int = MAX_STEPS) -> tuple[list[float], int]:
    """Train `name` (small profile) on one batch; return (Dice per channel in eval mode, steps)."""
    torch.manual_seed(0)
    model = create_model(name, "small")
    x, m = phantom_crops(BATCH, SIZE)
    m = m[:, : model.config.out_channels]
    edge = edge_targets(m, model.config.edge_target) if model.config.two_branch else None
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    dice = [0.0]
    for step in range(1, max_steps + 1):
        model.train()
        loss, _ = objective(model.config, model(x), m, edge)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0:
            model.eval()
            with torch.no_grad():
                dice = dice_per_channel(model(x)["seg"], m)
            if min(dice) > DICE_GOAL:
                return dice, step
    return dice, max_steps


@pytest.mark.parametrize("name", list_models())
def test_overfit_one_batch(name):
    # Each configuration takes 2-8 s on one core (60 steps at the time of writing).
    dice, steps = overfit(name)
    assert min(dice) > DICE_GOAL, (name, dice, steps)


def test_untrained_model_does_not_pass():
    """The Dice goal is not met by chance: an untrained network stays below it."""
    torch.manual_seed(0)
    model = create_model("dist_dcff", "small").eval()
    x, m = phantom_crops(BATCH, SIZE)
    with torch.no_grad():
        assert min(dice_per_channel(model(x)["seg"], m)) < DICE_GOAL
