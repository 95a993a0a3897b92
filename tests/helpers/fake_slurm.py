"""A stand-in SLURM for tests: ``sbatch``, ``srun``, ``sacct``, ``squeue``, ``scancel`` and
``scontrol requeue`` on this machine, so that submitit's real `SlurmExecutor` (the ``--launcher slurm``
path: sbatch scripts, job ids, sacct states, requeue on preemption) runs without a cluster.

`install(folder)` writes the commands into ``folder/bin`` (put it first on PATH) and keeps
job states in ``folder/state``. A job runs its sbatch script with ``bash`` in a new session
(it survives the process that submitted it, as a cluster job would); ``srun`` starts
``--ntasks-per-node`` copies of its command with SLURM_PROCID/SLURM_LOCALID set and the
``%j``/``%t`` log patterns filled; ``scontrol requeue`` makes the job run its script again
when the current run ends (state REQUEUED, then RUNNING), as SLURM does after a preemption.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = ("sbatch", "srun", "sacct", "squeue", "scancel", "scontrol")
#: States of a job still in the queue (squeue lists it).
QUEUED = ("PENDING", "RUNNING", "REQUEUED", "COMPLETING")


def install(folder: Path) -> dict[str, str]:
    """Write the fake commands; return the environment that puts them first on PATH."""
    bin_dir, state = folder / "bin", folder / "state"
    bin_dir.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    for name in COMMANDS:
        path = bin_dir / name
        # runs this file as a script (`__main__` below): nothing to import, no path to set
        run = shlex.join([sys.executable, str(Path(__file__).resolve()), name])
        path.write_text(f'#!/bin/sh\nexec {run} "$@"\n')
        path.chmod(0o755)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAKE_SLURM_STATE": str(state),
    }


def _state_dir() -> Path:
    return Path(os.environ["FAKE_SLURM_STATE"])


def _set(job_id: str, state: str) -> None:
    path = _state_dir() / f"{job_id}.state"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state)
    tmp.rename(path)


def _get(job_id: str) -> str:
    path = _state_dir() / f"{job_id}.state"
    return path.read_text().strip() if path.exists() else ""


def main(name: str, argv: list[str]) -> None:
    sys.exit(
        {
            "sbatch": sbatch,
            "srun": srun,
            "sacct": sacct,
            "squeue": squeue,
            "scancel": scancel,
            "scontrol": scontrol,
            "_run": run_job,
        }[name](argv)
        or 0
    )


def sbatch(argv: list[str]) -> int:
    if "--test-only" in argv:  # every job fits the stand-in
        print("sbatch: Job 1 to start at now using 1 processors", file=sys.stderr)
        return 0
    script = argv[-1]
    text = Path(script).read_text()
    counter = _state_dir() / "next_id"
    job_id = int(counter.read_text()) if counter.exists() else 5000
    counter.write_text(str(job_id + 1))
    m = re.search(r"^#SBATCH --ntasks-per-node=(\d+)", text, re.M)
    env = dict(
        os.environ,
        SLURM_JOB_ID=str(job_id),
        SLURM_NTASKS=m.group(1) if m else "1",
        SLURM_JOB_NUM_NODES="1",
        SLURM_NODEID="0",
        SLURM_JOB_NODELIST="localhost",
    )
    _set(str(job_id), "PENDING")
    subprocess.Popen(
        [sys.executable, __file__, "_run", str(job_id), script],
        env=env,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(f"Submitted batch job {job_id}")
    return 0


def run_job(argv: list[str]) -> int:
    """The job: run the script (again after a requeue) and record the final state."""
    job_id, script = argv
    while True:
        _set(job_id, "RUNNING")
        proc = subprocess.Popen(["bash", script], start_new_session=True)
        (_state_dir() / f"{job_id}.pgid").write_text(str(proc.pid))
        rc = proc.wait()
        if _get(job_id) == "CANCELLED":
            return 0
        flag = _state_dir() / f"{job_id}.requeue"
        if flag.exists():
            flag.unlink()
            _set(job_id, "REQUEUED")
            time.sleep(0.5)
            continue
        _set(job_id, "COMPLETED" if rc == 0 else "FAILED")
        return 0


def srun(argv: list[str]) -> int:
    output = error = None
    i = 0
    while i < len(argv) and argv[i].startswith("--"):
        if argv[i] in ("--output", "--error"):
            if argv[i] == "--output":
                output = argv[i + 1]
            else:
                error = argv[i + 1]
            i += 2
        else:
            i += 1
    command = argv[i:]
    job_id = os.environ["SLURM_JOB_ID"]
    procs = []
    for task in range(int(os.environ.get("SLURM_NTASKS", "1"))):
        env = dict(os.environ, SLURM_PROCID=str(task), SLURM_LOCALID=str(task))

        def fill(pattern: str | None, task: int = task) -> str:
            return (pattern or os.devnull).replace("%j", job_id).replace("%t", str(task))

        out = open(fill(output), "a")
        err = open(fill(error), "a") if error else out
        procs.append(subprocess.Popen(command, env=env, stdout=out, stderr=err))
    return max(abs(p.wait()) for p in procs)


def sacct(argv: list[str]) -> int:
    """``sacct [-n] -o F1,F2,... -j ID ...`` (submitit's JobID,State,NodeList; the
    launcher's JobID,State,ExitCode,MaxRSS,ReqMem), pipe-separated."""
    ids = [argv[i + 1] for i, a in enumerate(argv) if a == "-j"]
    opt = argv.index("-o") if "-o" in argv else None
    fields = argv[opt + 1].split(",") if opt is not None else ["JobID", "State", "NodeList"]
    if "-n" not in argv:
        print("|".join(fields))
    for job_id in ids:
        state = _get(job_id)
        values = {"JobID": job_id, "State": state, "NodeList": "localhost", "ExitCode": "0:0"}
        if state:
            print("|".join(values.get(f, "") for f in fields))
    return 0


def squeue(argv: list[str]) -> int:
    """``squeue -u USER -h -o %i|%T``: the jobs still queued, running or completing."""
    for path in sorted(_state_dir().glob("*.state")):
        state = path.read_text().strip()
        if state in QUEUED:
            print(f"{path.stem}|{state}")
    return 0


def scancel(argv: list[str]) -> int:
    job_id = [a for a in argv if not a.startswith("-")][0]
    _set(job_id, "CANCELLED")
    pgid = _state_dir() / f"{job_id}.pgid"
    if pgid.exists():
        try:
            os.killpg(int(pgid.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass
    return 0


def scontrol(argv: list[str]) -> int:
    """``scontrol requeue ID``: the job's tasks are ended (a moment later, so the caller can
    exit first) and its script runs again."""
    if argv[:1] != ["requeue"]:
        return 1
    job_id = argv[1]
    (_state_dir() / f"{job_id}.requeue").write_text("")
    pgid = (_state_dir() / f"{job_id}.pgid").read_text().strip()
    subprocess.Popen(
        ["bash", "-c", f"sleep 2; kill -KILL -- -{pgid} 2>/dev/null"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return 0


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
