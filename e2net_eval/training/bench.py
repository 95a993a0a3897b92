"""`bench train`: training steps per second of each configuration on synthetic batches.

The network, optimiser, mixed-precision policy and step are the trainer's own (`Trainer`
methods `build_network`, `build_optimiser`, `step`), so the figure is that of `train`.
Work is counted and the machine's matmul rate measured as in `e2net_eval.runtime.timing`.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import torch

from e2net_eval.runtime.device import memory_format, resolve_device
from e2net_eval.runtime.timing import count_macs, result, sync
from e2net_eval.training.distributed import DistInfo
from e2net_eval.training.job import TrainJob
from e2net_eval.training.trainer import Trainer
from reference_models.targets import edge_targets


def _synthetic_batch(model, batch: int, size: int, device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    cfg = model.config
    x = torch.randn(batch, model.in_channels, size, size, generator=g)
    mask = (torch.rand(batch, cfg.out_channels, size, size, generator=g) > 0.5).float()
    out = {"image": x, "mask": mask}
    if cfg.stage == 2 and cfg.edge_target != "none":
        out["edge"] = edge_targets(mask, cfg.edge_target).float()
    fmt = memory_format(device)
    return {k: v.to(device, memory_format=fmt) for k, v in out.items()}


def synthetic_trainer(name: str, profile: str, batch_size: int | None, dev):
    """(trainer, network, batch): the trainer's own network and optimiser for `name` (seed 0),
    and a synthetic batch of its size (`bench train` and `bench gpu`)."""
    job = TrainJob(name, None, None, profile=profile, batch_size=batch_size, seed=0)
    trainer = Trainer(job, DistInfo(), dev)
    model = trainer.build_network().train()
    trainer.build_optimiser()
    batch = _synthetic_batch(model, trainer.settings.batch_size, model.config.input_size, dev)
    return trainer, model, batch


def _train_row(name: str, profile: str, batch_size: int | None, steps: int, dev) -> dict:
    trainer, model, batch = synthetic_trainer(name, profile, batch_size, dev)
    cfg = model.config
    bs = trainer.settings.batch_size

    step = functools.partial(trainer.step, batch)
    macs_step = count_macs(step)  # also the warm-up step
    seconds = _seconds_per_step(step, steps, dev)
    # the reference in the same run: the same step on contiguous (not channels-last) tensors
    model.to(memory_format=torch.contiguous_format)
    plain = {k: v.contiguous() for k, v in batch.items()}
    trainer.step(plain)  # warm-up in this format
    contiguous = _seconds_per_step(lambda: trainer.step(plain), steps, dev)
    model.to(memory_format=memory_format(dev))
    return {
        "config": name,
        "stage": cfg.stage,
        "input_size": cfg.input_size,
        "batch_size": bs,
        "macs_per_sample_fwd_bwd": macs_step / bs,
        "seconds_per_step": seconds,
        "steps_per_s": 1 / seconds,
        "samples_per_s": bs / seconds,
        "achieved_gflops": 2 * macs_step / seconds / 1e9,
        "seconds_per_step_contiguous": contiguous,
        "speedup_vs_contiguous": contiguous / seconds,
    }


def _seconds_per_step(step, steps: int, dev) -> float:
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(dev)
    return (time.perf_counter() - t0) / steps


def bench_train(
    configs: list[str],
    *,
    profile: str = "small",
    batch_size: int | None = None,
    steps: int = 5,
    device: str = "auto",
) -> dict[str, Any]:
    """Training steps per second of each configuration on synthetic batches (SGD, AMP on CUDA)."""
    dev = resolve_device(device)
    rows = [_train_row(name, profile, batch_size, steps, dev) for name in configs]
    return result("train", profile, rows, dev)
