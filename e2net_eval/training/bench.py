"""Speed figures that make sense on any machine: work counted, time measured, and the ratio.

A time alone says little on a shared or unknown machine, so every benchmark reports the
multiply-adds it performed (counted by ``torch.utils.flop_counter.FlopCounterMode``: conv
and matmul ops; element-wise work is not counted), the time, and the machine's measured
dense matmul throughput in the same process: ``achieved / matmul`` is the fraction of the
machine's peak-like rate the network reaches.
"""

from __future__ import annotations

import platform
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from e2net_eval.training.runtime import amp_setup, resolve_device, train_step
from e2net_eval.training.settings import settings_for


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_macs(fn) -> int:
    """Multiply-adds of the conv/matmul ops `fn()` runs (FLOPs / 2)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops() // 2)


def matmul_gflops(device: torch.device, dtype: torch.dtype = torch.float32) -> float:
    """Measured dense matmul throughput in GFLOP/s (2 n^3 per product), best of 5."""
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)
    sync(device)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def machine(device: torch.device) -> dict[str, Any]:
    """What ran the benchmark: device name, threads, torch version, matmul throughput."""
    info: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "matmul_gflops_fp32": matmul_gflops(device),
    }
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
        info["matmul_gflops_bf16"] = matmul_gflops(device, torch.bfloat16)
    return info


def _synthetic_batch(model, batch: int, size: int, device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    cfg = model.config
    x = torch.randn(batch, model.in_channels, size, size, generator=g)
    mask = (torch.rand(batch, cfg.out_channels, size, size, generator=g) > 0.5).float()
    out = {"image": x, "mask": mask}
    if cfg.stage == 2 and cfg.edge_target != "none":
        from reference_models.targets import edge_targets

        out["edge"] = edge_targets(mask, cfg.edge_target).float()
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    return {k: v.to(device, memory_format=fmt) for k, v in out.items()}


def _train_row(name: str, profile: str, batch_size: int | None, steps: int, dev) -> dict:
    import reference_models

    torch.manual_seed(0)
    model = reference_models.create_model(name, profile=profile).to(dev).train()
    if dev.type == "cuda":  # as the trainer runs it
        model.to(memory_format=torch.channels_last)
    cfg = model.config
    bs = batch_size or settings_for(profile, cuda=dev.type == "cuda").batch_size
    batch = _synthetic_batch(model, bs, cfg.input_size, dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    autocast, scaler = amp_setup(dev)

    def step() -> None:
        train_step(model, cfg, batch, opt, autocast, scaler)

    macs_step = count_macs(step)  # also the warm-up step
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(dev)
    seconds = (time.perf_counter() - t0) / steps
    return {
        "config": name, "stage": cfg.stage, "input_size": cfg.input_size, "batch_size": bs,
        "macs_per_sample_fwd_bwd": macs_step / bs, "seconds_per_step": seconds,
        "steps_per_s": 1 / seconds, "samples_per_s": bs / seconds,
        "achieved_gflops": 2 * macs_step / seconds / 1e9,
    }  # fmt: skip


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
    info = machine(dev)
    for r in rows:
        r["fraction_of_matmul"] = r["achieved_gflops"] / info["matmul_gflops_fp32"]
    return {"kind": "train", "profile": profile, "machine": info, "rows": rows}


def format_rows(result: dict[str, Any]) -> str:
    """A plain-text table of a benchmark result."""
    m = result["machine"]
    head = (
        f"{result['kind']} benchmark, profile {result['profile']}, device {m.get('name', m['device'])},"
        f" torch {m['torch']}, {m['threads']} thread(s); matmul fp32 {m['matmul_gflops_fp32']:.1f} GFLOP/s"
    )
    if "matmul_gflops_bf16" in m:
        head += f", bf16 {m['matmul_gflops_bf16']:.1f} GFLOP/s"
    lines = [head]
    for r in result["rows"]:
        lines.append("  " + ", ".join(f"{k}={_fmt(v)}" for k, v in r.items()))
    for k, v in result.get("case", {}).items():
        lines.append(f"  case {k}: {_fmt(v)}")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
