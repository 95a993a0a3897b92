"""Helpers of the reliability tests: the CLI in a real subprocess (for kills, signals and a
second concurrent writer), waiting on fault points, /proc process checks, and file
permissions that hold for root too (root reads and writes anything, so as root the
permission tests run the CLI without the capabilities that bypass file modes)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KW = {"seed": 3, "size": 32, "slices": (6, 8)}
#: One training step of the small profile: enough to have weights, checkpoints, a lock.
TRAIN = ["--max-steps", "1", "--batch-size", "2", "--steps-per-epoch", "1", "--no-progress"]
#: A generous bound for things that must happen (a process ending, a marker appearing): a
#: hang guard, not a speed check.
PATIENCE_S = 120.0


def copy_of(data: Path, name: str, dst: Path) -> Path:
    shutil.copytree(data / name, dst, symlinks=True)
    return dst


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.setdefault("OMP_NUM_THREADS", "1")
    e.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    e.pop("E2NET_EVAL_FAULT", None)
    e.update(extra)
    return e


def cli_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "e2net_eval", *map(str, args)]


def run_proc(*args, fault: str | None = None, obey_modes: bool = False, cwd=None, **kw):
    """Run the CLI in a subprocess to the end -> CompletedProcess (text).

    `obey_modes`: file modes bind the process even when it runs as root (see `_drop_dac`).
    """
    extra = {"E2NET_EVAL_FAULT": fault} if fault else {}
    if obey_modes and os.geteuid() == 0:
        kw["preexec_fn"] = _drop_dac
    return subprocess.run(
        cli_cmd(*args),
        env=env(**extra),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd or tempfile.gettempdir(),
        **kw,
    )


_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _drop_dac() -> None:
    """In the child before exec: drop the capabilities that let root ignore file modes."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def start_proc(*args, fault: str, ready: Path, **kw) -> subprocess.Popen:
    """Start the CLI with a pausing fault point; wait until it is paused there.

    Its stdout and stderr go to files in `ready` (`output(proc)`), not pipes: a child that
    outlives it (the defect of item 11) would hold a pipe open and hang the reader.
    """
    ready.mkdir(parents=True, exist_ok=True)
    out = open(ready / "stdout.txt", "w")  # noqa: SIM115 - closed by `output`/`kill_quietly`
    err = open(ready / "stderr.txt", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        cli_cmd(*args),
        env=env(E2NET_EVAL_FAULT=fault, E2NET_EVAL_FAULT_READY=str(ready)),
        stdout=out,
        stderr=err,
        text=True,
        **kw,
    )
    proc.files = (out, err, ready)  # type: ignore[attr-defined]
    point = fault.split(":")[0].split("@")[0]
    wait_for(lambda: any(ready.glob(f"{point}.*")) or proc.poll() is not None, what=fault)
    if proc.poll() is not None:
        stdout, stderr = output(proc)
        raise AssertionError(f"process ended before {fault}: {proc.returncode}\n{stdout}\n{stderr}")
    return proc


def output(proc: subprocess.Popen) -> tuple[str, str]:
    """(stdout, stderr) of a process from `start_proc`, after it ended."""
    proc.wait(timeout=PATIENCE_S)
    out, err, ready = proc.files  # type: ignore[attr-defined]
    out.close()
    err.close()
    return (ready / "stdout.txt").read_text(), (ready / "stderr.txt").read_text()


def wait_for(condition, what: str = "condition") -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def children_of(pid: int) -> list[int]:
    """Pids whose parent is `pid` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(entry))
    return out


def kill_quietly(proc: subprocess.Popen) -> None:
    """SIGKILL a `start_proc` process if it still runs, and reap it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    output(proc)


def one_error_line(err: str, *needles: str) -> str:
    """Exactly one non-empty stderr line, `error: ...`, containing every needle."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def tree(path: Path) -> dict[str, bytes]:
    """Every file below `path` with its bytes (to prove a folder untouched)."""
    return {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }
