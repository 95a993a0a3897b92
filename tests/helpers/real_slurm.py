"""A real one-node SLURM cluster for the tests (`tools/slurm-local.sh`).

`slurm_cluster` (session-scoped) starts it unless it is already up, exports its
``SLURM_CONF`` and stops it at the end if it started it. Needs root (to install the Debian
packages and start the daemons) or a cluster already up (`tools/slurm-local.sh up`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "slurm-local.sh"


def _script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="session")
def slurm_cluster():
    """The cluster's environment (``SLURM_CONF``): up for the session."""
    env = {**os.environ, "E2NET_SLURM_DIR": os.environ.get("E2NET_SLURM_DIR", "/tmp/e2net-slurm")}
    already = _script("status", env=env).returncode == 0
    if not already and os.geteuid() != 0 and shutil.which("slurmctld") is None:
        pytest.skip("a real SLURM cluster needs root (or `tools/slurm-local.sh up` first)")
    if not already:
        up = _script("up", env=env)
        assert up.returncode == 0, up.stderr
    conf = _script("env", env=env).stdout.strip().split("=", 1)[1]
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    yield {"SLURM_CONF": conf, "E2NET_SLURM_DIR": env["E2NET_SLURM_DIR"]}
    if saved is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = saved
    if not already:
        _script("down", env=env)


def squeue(job_id: str) -> str:
    """The job's state while SLURM has it in its queue, else ''."""
    out = subprocess.run(
        ["squeue", "-h", "-o", "%T", "-j", str(job_id)], capture_output=True, text=True
    )
    return out.stdout.strip()


def sacct_state(job_id: str) -> str:
    out = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-o", "State", "-j", str(job_id)],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()
