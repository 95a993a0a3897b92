"""Each configuration overfits one small batch of phantom crops (proof the parts learn).

The batch comes from the project's phantom (`e2net_eval.data.write_phantom`, LiTS layout,
read back with `open_dataset`): the axial slice with the most tumour of each of four cases
(one of them tumour-free, so the tumour channel also has an empty image), windowed with
`window_hu`, cropped to 64 x 64 around the liver.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from e2net_eval.data import open_dataset, window_hu, write_phantom
from e2net_eval.data.phantom import PhantomSpec
from reference_models import create_model, list_models
from reference_models.losses import objective
from reference_models.targets import edge_targets

SIZE = 64
CASES = (0, 1, 2, 3)  # phantom index 2 has no tumour
PHANTOM_SIZE = 128
PHANTOM_SLICES = (24, 24)
MAX_STEPS = 120
DICE_GOAL = 0.9
EVAL_EVERY = 10
LR = 3e-3


def _crop_box(liver: np.ndarray, size: int) -> tuple[slice, slice]:
    """A size x size window centred on the liver's bounding box, inside the image."""
    rows, cols = np.nonzero(liver)
    out = []
    for idx, n in ((rows, liver.shape[0]), (cols, liver.shape[1])):
        centre = (int(idx.min()) + int(idx.max()) + 1) // 2
        lo = min(max(centre - size // 2, 0), n - size)
        out.append(slice(lo, lo + size))
    return out[0], out[1]


def load_phantom_batch(root) -> tuple[torch.Tensor, torch.Tensor]:
    """(4, 1, 64, 64) windowed CT in [-1, 1] and (4, 2, 64, 64) liver/tumour masks."""
    write_phantom(
        root, PhantomSpec("lits", seed=0, indices=CASES, size=PHANTOM_SIZE, slices=PHANTOM_SLICES)
    )
    dataset = open_dataset(root)
    images, masks = [], []
    for case_id in dataset.case_ids():
        case = dataset.load(case_id)
        label = np.moveaxis(np.asarray(case.label), 2, 0)  # (Z, X, Y): axial slices first
        image = np.moveaxis(np.asarray(case.image), 2, 0)
        z = int(np.argmax((label == 2).sum(axis=(1, 2)) * 10_000 + (label >= 1).sum(axis=(1, 2))))
        rows, cols = _crop_box(label[z] >= 1, SIZE)
        images.append(window_hu(image[z][rows, cols]))
        masks.append(np.stack([label[z][rows, cols] >= 1, label[z][rows, cols] == 2]))
    x = torch.tensor(np.stack(images)[:, None], dtype=torch.float32)
    m = torch.tensor(np.stack(masks), dtype=torch.float32)
    return x, m


@pytest.fixture(scope="module")
def phantom_batch(tmp_path_factory) -> tuple[torch.Tensor, torch.Tensor]:
    return load_phantom_batch(tmp_path_factory.mktemp("phantom"))


def dice_per_channel(logits: torch.Tensor, mask: torch.Tensor) -> list[float]:
    """Dice of (logits > 0) against mask over the batch, per channel."""
    pred = (logits > 0).float()
    inter = (pred * mask).sum(dim=(0, 2, 3))
    total = pred.sum(dim=(0, 2, 3)) + mask.sum(dim=(0, 2, 3))
    return (2 * inter / total.clamp(min=1)).tolist()


def overfit(
    name: str, x: torch.Tensor, m: torch.Tensor, max_steps: int = MAX_STEPS
) -> tuple[list[float], int]:
    """Train `name` (small profile) on one batch; return (Dice per channel in eval mode, steps)."""
    torch.manual_seed(0)
    model = create_model(name, "small")
    m = m[:, : model.config.out_channels]
    edge = edge_targets(m, model.config.edge_target) if model.config.two_branch else None
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    dice = [0.0]
    for step in range(1, max_steps + 1):
        model.train()
        loss, _ = objective(model.config, model(x), m, edge)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % EVAL_EVERY == 0:
            model.eval()
            with torch.no_grad():
                dice = dice_per_channel(model(x)["seg"], m)
            if min(dice) > DICE_GOAL:
                return dice, step
    return dice, max_steps


# About 30-60 Adam steps each; 4-14 s on a loaded 2-core machine for stage1 and dist_dcff,
# up to ~25 s for the other two-branch models, which therefore run only with -m slow.
FAST = ("stage1", "dist_dcff")


@pytest.mark.parametrize("name", FAST)
def test_overfit_one_batch(name, phantom_batch):
    dice, steps = overfit(name, *phantom_batch)
    assert min(dice) > DICE_GOAL, (name, dice, steps)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_models() if n not in FAST])
def test_overfit_one_batch_slow(name, phantom_batch):
    dice, steps = overfit(name, *phantom_batch)
    assert min(dice) > DICE_GOAL, (name, dice, steps)


def test_phantom_batch_is_usable(phantom_batch):
    x, m = phantom_batch
    assert x.shape == (4, 1, SIZE, SIZE) and m.shape == (4, 2, SIZE, SIZE)
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    liver, tumour = m[:, 0].sum(dim=(1, 2)), m[:, 1].sum(dim=(1, 2))
    assert (liver > 200).all()  # every crop shows liver
    assert (tumour > 10).sum() == 3 and (tumour == 0).sum() == 1  # case 2 is tumour-free


def test_untrained_model_does_not_pass(phantom_batch):
    """The Dice goal is not met by chance: an untrained network stays below it."""
    torch.manual_seed(0)
    model = create_model("dist_dcff", "small").eval()
    x, m = phantom_batch
    with torch.no_grad():
        assert min(dice_per_channel(model(x)["seg"], m)) < DICE_GOAL
