"""What decides a CPU's floating-point results for our training runs: the vendor, torch's
version and CPU kernel level, and the instruction-set extensions whose kernels oneDNN picks
(AVX-512 variants, AMX). Two machines with the same key trained bit-identical weights in our
measurements; different keys may not (tests/workflows/test_ci_gate.py). A committed
baseline `NAME` (leaderboards/ci-baseline, leaderboards/phantom-baseline) may have twins
`NAME-<kind>/` made on machines of other kinds, each with the `machine.json` of its machine."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch

_FLAGS = re.compile(r"^(avx512\w*|amx\w*|avx_vnni\w*|fma|avx2)$")


def numerics_key() -> dict[str, object]:
    """This machine's key (stable across runs and processes)."""
    vendor, flags = "", set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "vendor_id" and not vendor:
                vendor = value.strip()
            elif name.strip() == "flags" and not flags:
                flags = {f for f in value.split() if _FLAGS.match(f)}
    return {
        "vendor": vendor,
        "torch": torch.__version__,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "flags": sorted(flags),
    }


def machine_baseline(default: Path) -> Path:
    """The twin of `default` made on a machine of this one's kind (`machine.json` equal to
    this machine's `numerics_key`), else `default`."""
    here = numerics_key()
    for candidate in sorted(default.parent.glob(default.name + "-*/machine.json")):
        if json.loads(candidate.read_text()) == here:
            return candidate.parent
    return default


def write_baseline(run: Path, target: Path, kind: str | None = None) -> None:
    """Copy an ablation run's `ablation.json` and summaries into the baseline `target`, or,
    with a `kind`, into its twin `target-kind` with this machine's `machine.json`."""
    if kind is not None:
        target = target.parent / f"{target.name}-{kind}"
    if target.exists():
        shutil.rmtree(target)
    for src in sorted(run.glob("eval/*/*/summary.json")):
        dst = target / src.relative_to(run)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    shutil.copy2(run / "ablation.json", target / "ablation.json")
    if kind is not None:
        (target / "machine.json").write_text(json.dumps(numerics_key(), indent=1) + "\n")
