"""The small profile learns: stage 1 reaches a liver Dice above 0.9 on phantom validation."""

from __future__ import annotations

import json
import time

import nibabel as nib
import numpy as np
import pytest


@pytest.mark.slow
def test_small_stage1_liver_dice_above_0_9(run_cli, tmp_path):
    from e2net_eval.data import write_phantom
    from e2net_eval.data.phantom import PhantomSpec

    root = tmp_path / "phantom"
    write_phantom(root, PhantomSpec("lits", 10, seed=0))
    run = tmp_path / "run"
    t0 = time.perf_counter()
    code, _, err = run_cli(
        "train",
        "stage1",
        "--data",
        root,
        "-o",
        run,
        "--max-epochs",
        "12",
        "--device",
        "cpu",
        "--no-progress",
    )
    assert code == 0, err
    val = json.loads((run / "split.json").read_text())["validation"]
    code, _, err = run_cli(
        "predict",
        run,
        "--data",
        root,
        "-o",
        tmp_path / "pred",
        "--device",
        "cpu",
        *[a for c in val for a in ("--cases", c)],
        "--no-progress",
    )
    assert code == 0, err
    dices = []
    for c in val:
        p = np.asarray(nib.load(str(tmp_path / "pred" / f"{c}.nii.gz")).dataobj) >= 1
        r = np.asarray(nib.load(str(root / f"segmentation-{c}.nii")).dataobj) >= 1
        dices.append(2 * (p & r).sum() / (p.sum() + r.sum()))
    print(f"validation liver Dice {dices}, {time.perf_counter() - t0:.0f} s")
    assert min(dices) > 0.9
