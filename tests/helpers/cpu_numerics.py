"""What decides a CPU's floating-point results for our training runs: the vendor, torch's
version and CPU kernel level, and the instruction-set extensions whose kernels oneDNN picks
(AVX-512 variants, AMX). Two machines with the same key trained bit-identical weights in our
measurements; different keys may not (tests/workflows/test_ci_gate.py)."""

from __future__ import annotations

import re
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
