"""Run metadata recorded in every output: version, git commit, torch, device, seed."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from e2net_eval import __version__


def git_commit() -> str | None:
    """The commit of the e2net-eval checkout, or None outside a git clone."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def torch_version() -> str | None:
    """torch's version without importing torch: the loaded module's, else the installed
    distribution's (importlib.metadata costs 20 ms of a start: imported only here)."""
    if "torch" in sys.modules:
        return str(sys.modules["torch"].__version__)
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("torch")
    except PackageNotFoundError:  # pragma: no cover - torch is a dependency
        return None


def run_meta(**extra: Any) -> dict[str, Any]:
    """A `meta` block for summary files; `extra` adds config, seed, device and the like."""
    meta: dict[str, Any] = {
        "package": "e2net-eval",
        "version": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    meta["torch"] = torch_version()
    meta.update(extra)
    return meta
