"""`make_launcher`: the launcher a run asks for, its options checked."""

from __future__ import annotations

from typing import Any

from e2net_eval.errors import InputError
from e2net_eval.workflows.launch.base import LAUNCHERS, LOCAL, Launcher
from e2net_eval.workflows.launch.cluster import SubmititLauncher
from e2net_eval.workflows.launch.local import LocalLauncher


def make_launcher(
    name: str, profile: Any, *, device: str = "auto", workers: int | None = None, slurm: Any = None
) -> Launcher:
    """The launcher `name` for a run of `profile` on `device`, with its options."""
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if name not in LAUNCHERS:
        raise InputError(f"unknown launcher {name!r}; choose from {list(LAUNCHERS)}")
    if name == LOCAL:
        if slurm is not None:
            raise InputError("--slurm-* options need --launcher slurm")
        return LocalLauncher(profile, device, workers)
    if workers is not None:
        raise InputError("--workers is for --launcher local (a cluster runs every job at once)")
    return SubmititLauncher(name, profile, slurm)
