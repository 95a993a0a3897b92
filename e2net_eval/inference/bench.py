"""`bench inference`: per-slice and per-case prediction time with counted multiply-adds.

Networks are freshly initialised (weights do not change the work done). Per slice: stage 1
on a whole ``size x size`` slice and stage 2 on one ``input_size`` crop, timed in batches.
Per case: the real pipeline (`predict_volume` parts) on a synthetic volume of ``n_slices``
slices with a liver box forced on *every* slice, so stage 2 runs on all of them: an upper
bound (about a third of a LiTS volume's slices hold liver).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

import reference_models
from e2net_eval.inference.predictor import (
    prepare_slices,
    stage1_liver,
    stage2_labels,
)
from e2net_eval.runtime.device import autocast, memory_format, resolve_device
from e2net_eval.runtime.orientation import Orientation, stored_tensor
from e2net_eval.runtime.timing import count_macs, result, sync
from reference_models.blocks import STRIDE


def _time_per_slice(model, x: torch.Tensor, device, repeats: int) -> float:
    with torch.no_grad():
        model(x)  # warm-up
        sync(device)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            sync(device)
            best = min(best, time.perf_counter() - t0)
    return best / x.shape[0]


def bench_inference(
    *,
    profile: str = "small",
    size: int | None = None,
    n_slices: int | None = None,
    config: str | None = None,
    batch_size: int = 16,
    repeats: int = 3,
    device: str = "auto",
) -> dict[str, Any]:
    """Figures for stage 1 and stage-2 `config` at `profile`; see the module docstring."""
    dev = resolve_device(device)
    default_size, default_slices = reference_models.get_profile(profile).bench_case
    size = size or default_size
    n_slices = n_slices or default_slices
    config = config or reference_models.list_models()[-1]  # the full model of Table 3
    torch.manual_seed(0)
    stage1 = (
        reference_models.create_model(reference_models.stage1_name(), profile=profile)
        .to(dev)
        .eval()
    )
    # the side stage 1 really gets (see pad_batch_like_crops): small 128 -> 144, paper 512
    padded = size + (stage1.config.input_size - size) % STRIDE
    stage2 = reference_models.create_model(config, profile=profile).to(dev).eval()
    b = min(batch_size, n_slices)
    rows = [
        _slice_row(model, side, b, dev, repeats)
        for model, side in ((stage1, padded), (stage2, stage2.config.input_size))
    ]
    case = _case_times(stage1, stage2, size, n_slices, batch_size, dev)
    return result("inference", profile, rows, dev, case=case)


def _slice_row(model, side: int, b: int, dev: torch.device, repeats: int) -> dict[str, Any]:
    """Multiply-adds and the best time per ``side x side`` slice of `model`, in batches of
    `b`."""
    x = torch.randn(b, model.in_channels, side, side, device=dev)
    with torch.no_grad():
        macs = count_macs(lambda m=model, x1=x[:1]: m(x1))
    x = x.contiguous(memory_format=memory_format(dev))
    model.to(memory_format=memory_format(dev))
    with autocast(dev):
        seconds = _time_per_slice(model, x, dev, repeats)
    return {
        "model": model.config.name,
        "input": f"{model.in_channels}x{side}x{side}",
        "batch": b,
        "macs_per_slice": macs,
        "seconds_per_slice": seconds,
        "slices_per_s": 1 / seconds,
        "achieved_gflops": 2 * macs / seconds / 1e9,
    }


def _case_times(stage1, stage2, size: int, n_slices: int, batch_size: int, dev) -> dict:
    """The prediction pipeline on a synthetic case with liver on every slice (seconds)."""
    rng = np.random.default_rng(0)
    hu = rng.uniform(-200, 300, size=(size, size, n_slices)).astype(np.float32)
    q = size // 4
    liver = torch.zeros((n_slices, size, size), dtype=torch.bool, device=dev)
    liver[:, q : size - q, q : size - q] = True
    orient = Orientation.from_affine(np.eye(4))
    sync(dev)
    t0 = time.perf_counter()
    slices = prepare_slices(hu, orient, dev)
    stage1_liver(stage1, slices, batch_size)
    sync(dev)
    t1 = time.perf_counter()
    labels = stage2_labels(stage2, slices, liver, batch_size)
    stored_tensor(orient, labels).cpu().numpy()
    sync(dev)
    t2 = time.perf_counter()
    return {
        "slices": n_slices,
        "slice_size": size,
        "stage1_seconds_with_upload": t1 - t0,
        "stage2_seconds_all_slices_with_download": t2 - t1,
        "total_seconds_upper_bound": t2 - t0,
    }
