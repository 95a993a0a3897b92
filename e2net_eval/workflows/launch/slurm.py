"""SLURM itself, without submitit: the job options (`SlurmOptions`, the ``--slurm-*``
parsers, the sbatch lines of each kind of job), ``sbatch --test-only`` before a run, and the
scheduler's view of the jobs (`SlurmQueue`: squeue while queued, sacct once they left).
"""

from __future__ import annotations

import getpass
import logging
import math
import re
import shlex
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2net_eval.errors import InputError

log = logging.getLogger(__name__)

#: Seconds a job that left the queue may take to show its result file (a shared file
#: system's delay) or its final sacct state (slurmctld reports to slurmdbd asynchronously).
SETTLE_S = 20.0

#: sbatch options the launcher sets itself (a --slurm-additional may not override them).
MANAGED = {
    "job-name": "the launcher names jobs",
    "partition": "--slurm-partition",
    "time": "--slurm-time",
    "mem": "--slurm-mem",
    "gpus-per-node": "--slurm-gpus-per-job",
    "ntasks-per-node": "--slurm-gpus-per-job (one task per GPU)",
    "ntasks": "--slurm-gpus-per-job (one task per GPU)",
    "nodes": "the launcher (one node per job)",
    "cpus-per-task": "--slurm-cpus-per-job",
    "output": "the launcher (RUN/jobs/)",
    "error": "the launcher (RUN/jobs/)",
    "array": "the launcher (no arrays)",
    "signal": "submitit (requeue on preemption)",
    "open-mode": "submitit",
}


@dataclass(frozen=True)
class SlurmOptions:
    """What the cluster jobs ask for (not in the fingerprint: results do not depend on it)."""

    partition: str | None = None
    gpus_per_job: int = 1
    cpus_per_job: int | None = None  # None: the profile's loader workers + 2 per GPU
    time_min: int = 24 * 60
    mem: str | None = None
    array_parallelism: int | None = None  # at most this many jobs queued or running
    additional: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.gpus_per_job < 0:
            raise InputError(f"--slurm-gpus-per-job must be >= 0, got {self.gpus_per_job}")
        if self.cpus_per_job is not None and self.cpus_per_job < 1:
            raise InputError(f"--slurm-cpus-per-job must be >= 1, got {self.cpus_per_job}")
        if self.cpus_per_job is not None and self.cpus_per_job % self.tasks("train"):
            raise InputError(
                f"--slurm-cpus-per-job {self.cpus_per_job} does not split evenly over "
                f"{self.tasks('train')} tasks (one per GPU)"
            )
        if self.time_min < 1:
            raise InputError(f"--slurm-time must be at least a minute, got {self.time_min} min")
        if self.array_parallelism is not None and self.array_parallelism < 1:
            raise InputError(
                f"--slurm-array-parallelism must be >= 1, got {self.array_parallelism}"
            )

    def tasks(self, kind: str) -> int:
        """Processes of a unit's job: one per GPU for training (DDP), else one."""
        return max(self.gpus_per_job, 1) if kind == "train" else 1

    def gpus(self, kind: str) -> int:
        """GPUs of a unit's job: all for training, one for predictions, none for the rest."""
        if kind == "train":
            return self.gpus_per_job
        return min(self.gpus_per_job, 1) if kind == "score" else 0

    def cpus_per_task(self, profile: Any) -> int:
        """CPUs of each task: the job's CPUs shared by its tasks (one GPU's share for
        predictions and the CPU jobs); by default the `profile`'s loader workers + 2."""
        if self.cpus_per_job:
            return self.cpus_per_job // self.tasks("train")
        return profile.loader_workers[1] + 2


_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_time(text: str) -> int:
    """A SLURM time limit (``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``) in
    whole minutes, rounded up."""
    m = _TIME.match(str(text).strip())
    if not m:
        raise InputError(f"--slurm-time {text!r}: use minutes, H:M:S or D-H[:M[:S]]")
    days, a, b, c = (int(x) if x is not None else None for x in m.groups())
    if days is not None:  # D-H, D-H:M, D-H:M:S
        seconds = ((days * 24 + a) * 60 + (b or 0)) * 60 + (c or 0)
    elif c is not None:  # H:M:S
        seconds = (a * 60 + b) * 60 + c
    elif b is not None:  # M:S
        seconds = a * 60 + b
    else:  # M
        seconds = a * 60
    if seconds <= 0:
        raise InputError(f"--slurm-time {text!r} is not a positive time")
    return math.ceil(seconds / 60)


_MEM = re.compile(r"^(\d+)\s*([KMGT])?B?$", re.IGNORECASE)


def parse_mem(text: str) -> str:
    """A SLURM memory request per job (``64G``, ``64GB``, ``500M``; a bare number is MB)."""
    m = _MEM.match(str(text).strip())
    if not m or int(m.group(1)) < 1:
        raise InputError(f"--slurm-mem {text!r}: use a size such as 64G or 500M")
    return f"{int(m.group(1))}{(m.group(2) or 'M').upper()}"


_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def parse_additional(items: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` (or a bare ``KEY`` flag) -> extra ``#SBATCH --KEY=VALUE`` lines."""
    extra: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not _KEY.match(key):
            raise InputError(f"--slurm-additional {item!r}: use KEY=VALUE, e.g. qos=high")
        flag = key.replace("_", "-").lower()
        if flag in MANAGED:
            raise InputError(f"--slurm-additional {item!r}: {flag} is set by {MANAGED[flag]}")
        if flag in {k.replace("_", "-") for k in extra}:
            raise InputError(f"--slurm-additional {key} given twice")
        extra[key] = value if sep else True
    return extra


def options_from_cli(given: dict[str, Any]) -> SlurmOptions:
    """`SlurmOptions` from the ``--slurm-*`` values given (None: not given), keyed by name."""
    options: dict[str, Any] = {}
    if given.get("partition"):
        options["partition"] = given["partition"]
    for key in ("gpus-per-job", "cpus-per-job"):
        if given.get(key) is not None:
            options[key.replace("-", "_")] = given[key]
    if given.get("time") is not None:
        options["time_min"] = parse_time(given["time"])
    if given.get("mem") is not None:
        options["mem"] = parse_mem(given["mem"])
    options["array_parallelism"] = given.get("array-parallelism")
    options["additional"] = parse_additional(given.get("additional") or ())
    return SlurmOptions(**options)


def slurm_parameters(opts: SlurmOptions, unit_kind_: str, profile: Any) -> dict[str, Any]:
    """submitit `SlurmExecutor.update_parameters` values of a unit's job (the sbatch lines)."""
    params: dict[str, Any] = {
        "time": opts.time_min,
        "nodes": 1,
        "ntasks_per_node": opts.tasks(unit_kind_),
        "cpus_per_task": opts.cpus_per_task(profile),
        "setup": job_setup(),
    }
    gpus = opts.gpus(unit_kind_)
    if gpus:
        params["gpus_per_node"] = gpus
    if opts.partition:
        params["partition"] = opts.partition
    if opts.mem:
        params["mem"] = opts.mem
    if opts.additional:
        params["additional_parameters"] = dict(opts.additional)
    return params


def code_root() -> Path | None:
    """The folder this e2net_eval was imported from when it is a source checkout (jobs
    must run the orchestrator's code), None when it is an installed package."""
    import e2net_eval

    root = Path(e2net_eval.__file__).resolve().parents[1]
    return None if root.name in ("site-packages", "dist-packages") else root


def job_setup() -> list[str]:
    """Shell lines run before a SLURM job's Python: the orchestrator's code first."""
    root = code_root()
    if root is None:
        return []
    return [f"export PYTHONPATH={shlex.quote(str(root))}${{PYTHONPATH:+:$PYTHONPATH}}"]


def sbatch_error(text: str) -> str:
    """sbatch's reason for refusing a job, on one line."""
    lines = [x.strip() for x in text.splitlines() if "error:" in x or "fatal:" in x]
    return " ".join(lines[-2:]) if lines else " ".join(text.split())[:300]


def check_submittable(opts: SlurmOptions, profile: Any) -> None:
    """``sbatch --test-only`` of each kind of job before anything runs: a refusal is an
    input error (exit 2) naming the option."""
    for kind_ in ("cpu", "score", "train"):
        params = slurm_parameters(opts, kind_, profile)
        args, named = [], []
        for key, option in _TESTED.items():
            if key in params:
                args.append(f"--{key.replace('_', '-')}={params[key]}")
                named.append(f"{args[-1]} ({option})" if option else args[-1])
        for key, value in (params.get("additional_parameters") or {}).items():
            flag = key.replace("_", "-")
            args.append(f"--{flag}" if value is True else f"--{flag}={value}")
            named.append(f"{args[-1]} (--slurm-additional)")
        cmd = ["sbatch", "--test-only", *args, "--wrap", "true"]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InputError(f"--launcher slurm: sbatch did not answer: {exc}") from None
        if out.returncode != 0:
            raise InputError(
                f"--launcher slurm: SLURM refuses the {kind_} jobs ({', '.join(named)}): "
                f"{sbatch_error(out.stderr)}"
            )


#: The sbatch options `check_submittable` asks about (the rest are the launcher's own).
_TESTED = {
    "partition": "--slurm-partition",
    "mem": "--slurm-mem",
    "gpus_per_node": "--slurm-gpus-per-job",
    "cpus_per_task": "--slurm-cpus-per-job",
    "time": "--slurm-time",
    "nodes": None,
    "ntasks_per_node": None,
}


class SlurmQueue:
    """The scheduler's state of this user's jobs: one ``squeue`` per look, ``sacct`` once a job
    left the queue (docs/cluster.md). Without accounting the cause is unknown, logged once."""

    def __init__(self) -> None:
        self.queued: dict[str, str] = {}
        self.ok = False  # the last squeue answered
        self.final: dict[str, tuple[str, str]] = {}
        self.no_accounting: str | None = None

    def refresh(self) -> bool:
        """Ask squeue once for every job of this user; False when it did not answer."""
        out = _slurm_cmd(["squeue", "-u", getpass.getuser(), "-h", "-o", "%i|%T"])
        self.ok = out is not None
        if out is not None:
            self.queued = dict(
                line.split("|", 1) for line in out.splitlines() if "|" in line.strip()
            )
        return self.ok

    def state(self, job_id: str) -> str:
        if job_id in self.queued:
            return self.queued[job_id]
        return self.ended(job_id)[0] if self.ok else "UNKNOWN"

    def gone(self, job_id: str) -> bool:
        """The job has left the queue (no process of it runs any more)."""
        return self.ok and str(job_id) not in self.queued

    def ended(self, job_id: str) -> tuple[str, str]:
        """(state, cause) of a job that left the queue, from sacct (waits up to SETTLE_S)."""
        if job_id in self.final:
            return self.final[job_id]
        deadline = time.monotonic() + SETTLE_S
        while True:
            found = self._sacct(job_id)
            if found is None or found[0] not in ("", "PENDING", "RUNNING", "COMPLETING"):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(1.0)
        if found is None:
            found = ("ENDED", f"no accounting to tell why: {self.no_accounting}")
        self.final[job_id] = found
        return found

    def _sacct(self, job_id: str) -> tuple[str, str] | None:
        fields = "JobID,State,ExitCode,MaxRSS,ReqMem"
        cmd = ["sacct", "-n", "-P", "-o", fields, "-j", str(job_id)]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return self._accounting_off(str(exc))
        if out.returncode != 0:
            return self._accounting_off(out.stderr.strip().splitlines()[-1:] or ["failed"])
        return sacct_cause(job_id, out.stdout)

    def _accounting_off(self, why: Any) -> None:
        why = " ".join(why) if isinstance(why, list) else why
        if self.no_accounting is None:
            log.warning(
                "sacct failed (%s): ended jobs are seen through squeue, their cause is unknown",
                why,
            )
        self.no_accounting = f"sacct failed ({why})"
        return None


def sacct_cause(job_id: str, text: str) -> tuple[str, str]:
    """(state, one-line cause) from ``sacct -n -P -o JobID,State,ExitCode,MaxRSS,ReqMem``:
    the job's state and exit code, and a step that used more memory than the job asked."""
    rows = [line.split("|") for line in text.splitlines() if line.count("|") >= 4]
    job = next((r for r in rows if r[0] == str(job_id)), None)
    if job is None:
        return "", ""
    state, cause = job[1].split()[0] if job[1].strip() else "", f"{job[1]}, exit {job[2]}"
    limit = _bytes(job[4])
    for row in rows:
        used = _bytes(row[3])
        if limit and used and used >= limit or row[1].startswith("OUT_OF_MEMORY"):
            state = "OUT_OF_MEMORY"
            cause += f"; out of memory: step {row[0]} used {row[3]} of {job[4]} (--slurm-mem)"
            break
    return state, cause


def _bytes(text: str) -> int:
    m = re.match(r"^(\d+(?:\.\d+)?)([KMGT]?)", text.strip())
    if not m:
        return 0
    return int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2) or " "))


def _slurm_cmd(cmd: list[str]) -> str | None:
    """A SLURM client command's stdout, None when it failed."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None
