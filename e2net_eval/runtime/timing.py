"""Speed figures that make sense on any machine: the multiply-adds a benchmark performed
(torch's `FlopCounterMode`: conv and matmul ops), the time, and the machine's dense matmul
rate measured in the same process; ``achieved / matmul`` is the share the network reaches.
"""

from __future__ import annotations

import platform
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); nothing on the CPU."""
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


def result(kind: str, profile: str, rows: list[dict], device, **extra) -> dict[str, Any]:
    """A benchmark's result: its rows, each with its share of the machine's matmul rate."""
    info = machine(device)
    for r in rows:
        r["fraction_of_matmul"] = r["achieved_gflops"] / info["matmul_gflops_fp32"]
    return {"kind": kind, "profile": profile, "machine": info, "rows": rows, **extra}


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
    return f"{v:.4g}" if isinstance(v, float) else str(v)
