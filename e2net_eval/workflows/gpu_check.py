"""`bench gpu`: a one-shot check of a GPU machine (train, inference, ddp, agreement), each
timed, into `OUT/gpu_check.{json,md}`; ``device="cpu"`` is its dry run. See docs/cluster.md,
"A GPU one-shot check".
"""

from __future__ import annotations

import logging
import math
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from e2net_eval.runtime.device import resolve_device
from e2net_eval.runtime.timing import machine
from reference_models import create_model, list_models, stage1_name

log = logging.getLogger(__name__)

#: Largest relative difference from the CPU's fp64 result a device may always have (outputs and
#: gradients, each tensor's largest difference over its largest value).
TOLERANCE = 1e-3
#: ...or this many times the CPU's own fp32 difference for that tensor, where larger: some of the
#: full model's gradients differ from fp64 by ~2e-2 in fp32 on a CPU, contiguous or channels-last.
NOISE_FACTOR = 4.0
#: What dry mode (CPU) runs instead of the paper sizes.
DRY = {"profile": "small", "batch_size": 2, "size": 128, "slices": 2, "world": 2}


def run_check(
    *, device: str = "cuda", steps: int = 200, profile: str = "paper", ddp_steps: int = 20
) -> dict[str, Any]:
    """Run the four parts; the summary (``ok`` is False when a part failed its check)."""
    dev = resolve_device(device)
    dry = dev.type != "cuda"
    profile = DRY["profile"] if dry else profile
    summary: dict[str, Any] = {"dry_run": dry, "profile": profile, "steps": steps}
    summary["machine"] = machine(dev)
    parts = {
        "train": lambda: _train(dev, profile, steps, dry),
        "inference": lambda: _inference(dev, profile, dry),
        "ddp": lambda: _ddp(dev, profile, ddp_steps, dry),
        "agreement": lambda: _agreement(dev, profile),
    }
    for name, part in parts.items():
        start = time.perf_counter()
        try:
            summary[name] = part()
        except Exception as exc:  # a part that fails is reported, the others still run
            log.exception("bench gpu: %s failed", name)
            summary[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        summary[name]["seconds"] = time.perf_counter() - start
    summary["ok"] = all(summary[name].get("ok") for name in parts)
    return summary


def _train(dev: torch.device, profile: str, steps: int, dry: bool) -> dict[str, Any]:
    from e2net_eval.training.bench import synthetic_trainer

    rows = []
    for name in list_models():
        batch_size = DRY["batch_size"] if dry else None
        trainer, _, batch = synthetic_trainer(name, profile, batch_size, dev)
        bs = trainer.settings.batch_size
        trainer.step(batch)  # warm-up (cudnn autotuning, allocator)
        _sync(dev)
        start = time.perf_counter()
        for _ in range(steps):
            loss = trainer.step(batch)
        _sync(dev)
        seconds = (time.perf_counter() - start) / steps
        loss = float(loss.detach() if isinstance(loss, torch.Tensor) else loss)
        rows.append(
            {
                "config": name,
                "batch_size": bs,
                "seconds_per_step": seconds,
                "samples_per_s": bs / seconds,
                "last_loss": loss,
                "ok": math.isfinite(loss),
                "max_memory_gib": _peak_gib(dev),
            }
        )
    return {"ok": all(r["ok"] for r in rows), "rows": rows}


def _inference(dev: torch.device, profile: str, dry: bool) -> dict[str, Any]:
    from e2net_eval.inference.bench import bench_inference

    sizes = {"size": DRY["size"], "n_slices": DRY["slices"]} if dry else {}
    result = bench_inference(profile=profile, device=str(dev), **sizes)
    result.pop("machine", None)
    return {"ok": True, **result}


def _ddp(dev: torch.device, profile: str, steps: int, dry: bool) -> dict[str, Any]:
    """The stage-1 network under DDP, one spawned process per GPU (gloo on the CPU)."""
    world = DRY["world"] if dry else torch.cuda.device_count()
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        mp.spawn(
            _ddp_rank,
            args=(world, port, dev.type, profile, steps, tmp),
            nprocs=world,
            join=True,
        )
        ranks = [torch.load(Path(tmp) / f"rank{r}.pt", weights_only=True) for r in range(world)]
    same = all(torch.equal(ranks[0]["digest"], r["digest"]) for r in ranks[1:])
    return {
        "ok": same and all(math.isfinite(r["loss"]) for r in ranks),
        "backend": "nccl" if dev.type == "cuda" else "gloo",
        "world_size": world,
        "seconds_per_step": max(r["seconds"] for r in ranks) / steps,
        "weights_equal_across_ranks": same,
    }


def _ddp_rank(
    rank: int, world: int, port: int, kind: str, profile: str, steps: int, out: str
) -> None:
    """One DDP process: a few SGD steps of stage 1 on its share of a synthetic batch."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    backend = "nccl" if kind == "cuda" else "gloo"
    dist.init_process_group(backend, rank=rank, world_size=world)
    dev = torch.device("cuda", rank) if kind == "cuda" else torch.device("cpu")
    if kind == "cuda":
        torch.cuda.set_device(dev)
    torch.manual_seed(0)
    name = stage1_name()
    model = create_model(name, profile=profile).to(dev)
    ddp = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[rank] if kind == "cuda" else None
    )
    opt = torch.optim.SGD(ddp.parameters(), lr=1e-3, momentum=0.9)
    side = model.config.input_size if kind == "cuda" else DRY["size"]
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(2, model.in_channels, side, side, generator=g).to(dev)
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        out_ = ddp(x)
        loss = sum(v.float().square().mean() for v in _tensors(out_))
        loss.backward()
        opt.step()
    _sync(dev)
    seconds = time.perf_counter() - start
    digest = torch.stack([p.detach().double().sum() for p in model.parameters()]).cpu()
    torch.save(
        {"digest": digest, "loss": float(loss.detach()), "seconds": seconds},
        Path(out) / f"rank{rank}.pt",
    )
    dist.destroy_process_group()


def _agreement(dev: torch.device, profile: str) -> dict[str, Any]:
    """Forward outputs and gradients of stage 1 and the full model on the device (fp32,
    channels-last) against the CPU in fp64; the allowance is the CPU's own fp32 error."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    rows = []
    for name in (stage1_name(), list_models()[-1]):
        truth = _outputs_and_grads(name, profile, torch.device("cpu"), torch.float64)
        cpu = _errors(truth, _outputs_and_grads(name, profile, torch.device("cpu")))
        device = _errors(truth, _outputs_and_grads(name, profile, dev, channels_last=True))
        rows.append(_agreement_row(name, cpu, device))
    return {"ok": all(r["ok"] for r in rows), "tolerance": TOLERANCE, "rows": rows}


def _outputs_and_grads(
    name: str,
    profile: str,
    where: torch.device,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
) -> dict[str, torch.Tensor]:
    """One forward and backward of `name` from seed 0 on a fixed batch: each output and each
    parameter's gradient by name, as float64 on the CPU."""
    torch.manual_seed(0)
    model = create_model(name, profile=profile).to(where, dtype).train()
    side = min(model.config.input_size, 128)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, model.in_channels, side, side, generator=g).to(where, dtype)
    if channels_last:  # as in training
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    outs = _tensors(model(x))
    sum(o.square().mean() for o in outs).backward()
    found = {f"output {i}": o for i, o in enumerate(outs)}
    found |= {f"grad {n}": p.grad for n, p in model.named_parameters() if p.grad is not None}
    return {n: t.detach().double().cpu() for n, t in found.items()}


def _errors(truth: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> dict[str, float]:
    """Each tensor's relative difference from the fp64 truth."""
    if got.keys() != truth.keys():
        raise RuntimeError(f"the device gave other tensors: {sorted(got.keys() ^ truth.keys())}")
    return {n: _relative(truth[n], got[n]) for n in truth}


def _agreement_row(name: str, cpu: dict[str, float], device: dict[str, float]) -> dict[str, Any]:
    """Each tensor passes within max(TOLERANCE, NOISE_FACTOR x its noise), its noise being the
    CPU fp32's difference for that tensor or, where larger, the median over all tensors (one
    tensor's fp32 error is itself a draw); the row names the worst tensor by difference over
    allowance."""
    typical = statistics.median(cpu.values())
    allowed = {n: max(TOLERANCE, NOISE_FACTOR * max(c, typical)) for n, c in cpu.items()}
    ratio = {n: d / allowed[n] for n, d in device.items()}
    worst = max(ratio, key=ratio.__getitem__)
    return {
        "config": name,
        "max_relative_difference": max(device.values()),
        "cpu_max_relative_difference": max(cpu.values()),
        "cpu_median_relative_difference": typical,
        "worst_tensor": worst,
        "worst_over_allowed": ratio[worst],
        "ok": ratio[worst] <= 1.0,
    }


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = max(float(a.abs().max()), 1e-12)
    return float((a - b).abs().max()) / scale


def _tensors(out: Any) -> list[torch.Tensor]:
    """The tensors of a network's output (a tensor, a tuple/list or a dict of them)."""
    if isinstance(out, torch.Tensor):
        return [out]
    values = out.values() if isinstance(out, dict) else out
    return [t for v in values for t in _tensors(v)]


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _peak_gib(dev: torch.device) -> float | None:
    if dev.type != "cuda":
        return None
    peak = torch.cuda.max_memory_allocated(dev) / 2**30
    torch.cuda.reset_peak_memory_stats(dev)
    return peak


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown: one line per part, a table per configuration."""
    m = summary["machine"]
    lines = [
        "# GPU check",
        "",
        f"- device: {m.get('name', m['device'])}, torch {m['torch']}; "
        f"profile {summary['profile']}; {'dry run (CPU)' if summary['dry_run'] else ''}",
        f"- overall: {'OK' if summary['ok'] else 'FAILED'}",
        "",
    ]
    for part in ("train", "inference", "ddp", "agreement"):
        p = summary[part]
        state = "ok" if p.get("ok") else f"FAILED {p.get('error', '')}"
        lines.append(f"- {part}: {state} ({p['seconds']:.1f} s)")
    lines += ["", "| config | batch | s/step | samples/s | last loss |", "|---|---|---|---|---|"]
    for r in summary["train"].get("rows", []):
        lines.append(
            f"| {r['config']} | {r['batch_size']} | {r['seconds_per_step']:.4f} | "
            f"{r['samples_per_s']:.1f} | {r['last_loss']:.4g} |"
        )
    ddp = summary["ddp"]
    if "world_size" in ddp:
        lines.append(
            f"\nDDP ({ddp['backend']}, {ddp['world_size']} processes): "
            f"{ddp['seconds_per_step']:.4f} s/step, weights equal across ranks: "
            f"{ddp['weights_equal_across_ranks']}"
        )
    for r in summary["agreement"].get("rows", []):
        lines.append(
            f"\nagreement {r['config']} vs CPU fp64: max relative difference "
            f"{r['max_relative_difference']:.2e} (CPU fp32: {r['cpu_max_relative_difference']:.2e}); "
            f"worst: {r['worst_tensor']} at {r['worst_over_allowed']:.2f} of its allowance"
        )
    return "\n".join(lines) + "\n"
