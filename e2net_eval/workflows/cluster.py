"""The ablation's job graph on a SLURM cluster (or submitit's local executor), via submitit.

Same graph, second executor. `workflows.ablation.steps` gives the steps; this module groups
them into *units*, one cluster job each, and hands the unit graph to the one scheduler,
`workflows.jobs.run_jobs`, with a `SubmititPool` instead of local worker processes:

```
prepare            data:*, overlap, split, cache (every step of those kinds: one CPU job)
train:<name>       each training step its own job (N GPUs and N tasks: DDP)
score:<name>       the predict and evaluate steps that follow train:<name> (one GPU)
report (and any other kind)   its own job (CPU)
```

Units are made from the kind of each step (``kind_of``: the workflow says how a name reads;
`workflows.ablation.step_kind` skips a replicate's ``rep<r>:`` prefix) and the graph alone:
a predict step belongs with the train step it depends on, an evaluate step with its predict
step. Replicate r's units are ``rep<r>:train:<config>`` and ``rep<r>:score:<config>``; its
split and cache join the one ``prepare`` job.

Scheduling: a unit is submitted when the units it depends on have finished (no SLURM
``--dependency``): a failed job then blocks only what needs it, every other job runs on,
and the orchestrating process records each job's id, state and log paths in
``RUN/ablation_state.json`` (it alone writes that file). If the orchestrator stops, the
jobs keep running on the cluster; rerunning the command follows them again (a job in
flight is not resubmitted), marks what finished meanwhile, and resubmits failed units after
printing their log paths. A preempted or timed-out job is requeued by submitit: the
callable's `checkpoint()` hands submitit a new call of itself, whose training step calls
the trainer with ``resume=True``, so it continues from ``checkpoint_last.pt`` (at most the
epoch in progress is redone, bit-identically).

submitit is imported only when a cluster run starts (the CLI and ``ablation --help`` do
not import it): ``pip install 'e2net-eval[cluster]'``.
"""

from __future__ import annotations

import getpass
import logging
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2net_eval.errors import InputError
from e2net_eval.workflows.jobs import Finished, Job, Pool, set_worker_threads

log = logging.getLogger(__name__)

#: Step kinds that run together in the first job (data generation, overlap, split, cache).
PREPARE_KINDS = ("data", "overlap", "split", "cache")
PREPARE_UNIT = "prepare"
#: Launchers: `local` (workflows.jobs worker processes), `slurm` (sbatch through submitit),
#: `submitit-local` (the same cluster jobs as local subprocesses: submitit's LocalExecutor).
LAUNCHERS = ("local", "slurm", "submitit-local")
#: How often a preempted or timed-out job may be requeued (submitit's max_num_timeout).
MAX_REQUEUES = 20
#: Seconds between two looks at the jobs (one squeue for all; sacct once a job has left).
POLL_S = {"slurm": 15.0, "local": 0.5}
#: Seconds a job that left the queue may take to show its result file (a shared file
#: system's delay) or its final sacct state (slurmctld reports to slurmdbd asynchronously).
SETTLE_S = 20.0
#: Requeues in a row after a time limit without a new checkpoint before a job gives up
#: (its --slurm-time is too short for one checkpoint).
MAX_STALLS = 2
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


# -- options ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SlurmOptions:
    """What the cluster jobs ask for (not part of the run's fingerprint: results do not
    depend on where they ran)."""

    executor: str = "slurm"  # "slurm" or "local" (submitit's LocalExecutor, for tests)
    partition: str | None = None
    gpus_per_job: int = 1
    cpus_per_job: int | None = None  # None: the profile's loader workers + 2 per GPU
    time_min: int = 24 * 60
    mem: str | None = None
    array_parallelism: int | None = None  # at most this many jobs queued or running
    additional: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.executor not in ("slurm", "local"):
            raise InputError(f"unknown submitit executor {self.executor!r}")
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

    def cpus_per_task(self, profile: str) -> int:
        """CPUs of each task: the job's CPUs shared by its tasks (one GPU's share for
        predictions and the CPU jobs)."""
        per_gpu = self.cpus_per_job // self.tasks("train") if self.cpus_per_job else None
        if per_gpu is None:
            from reference_models.registry import get_profile

            per_gpu = get_profile(profile).loader_workers[1] + 2
        return per_gpu


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


# -- units: the step graph grouped into cluster jobs -----------------------------------------
def kind(step: str) -> str:
    """A step's kind when its name starts with it (``train:dist`` -> ``train``)."""
    return step.partition(":")[0]


def unit_of(job: Job, assigned: dict[str, str], kind_of: Callable[[str], str] = kind) -> str:
    """The unit (cluster job) of a step, given the units of the steps before it."""
    k = kind_of(job.name)
    if k in PREPARE_KINDS:
        return PREPARE_UNIT
    if k == "train":
        return job.name
    if k in ("predict", "evaluate"):
        trained = [d for d in job.deps if kind_of(d) == "train"]
        if trained:  # a prediction goes with the training it needs: train -> score
            parts = trained[0].split(":")
            parts[parts.index("train")] = "score"
            return ":".join(parts)
        scored = [assigned[d] for d in job.deps if kind_of(d) in ("predict", "evaluate")]
        if scored:  # an evaluation with its prediction
            return scored[0]
    return job.name


def unit_kind(members: list[str], kind_of: Callable[[str], str] = kind) -> str:
    """What a unit's job needs: ``train`` (GPUs, DDP), ``score`` (one GPU) or ``cpu``."""
    kinds = {kind_of(s) for s in members}
    if "train" in kinds:
        return "train"
    return "score" if "predict" in kinds else "cpu"


def group_units(
    jobs: list[Job], kind_of: Callable[[str], str] = kind
) -> tuple[list[Job], dict[str, list[str]]]:
    """The unit graph (a `Job` per unit: deps are units, cost the longest member chain)
    and each unit's steps in the graph's order."""
    assigned: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for job in jobs:  # in dependency order
        unit = unit_of(job, assigned, kind_of)
        assigned[job.name] = unit
        members.setdefault(unit, []).append(job.name)
    deps: dict[str, list[str]] = {u: [] for u in members}
    cost: dict[str, float] = dict.fromkeys(members, 0.0)
    for job in jobs:
        unit = assigned[job.name]
        cost[unit] = max(cost[unit], job.cost)
        for d in job.deps:
            if assigned[d] != unit and assigned[d] not in deps[unit]:
                deps[unit].append(assigned[d])
    return [Job(u, tuple(deps[u]), cost[u]) for u in members], members


# -- what a cluster job runs -----------------------------------------------------------------
class UnitCall:
    """The callable a cluster job runs: the steps of one unit, in order, each through the
    same `execute(spec, step)` a local worker runs. Returns ``{step: {"outputs",
    "seconds"}}``. Picklable; `checkpoint` makes it requeueable (see the module docstring).
    """

    def __init__(
        self,
        execute: Callable[[Any, str], Any],
        spec: Any,
        unit: str,
        steps: list[str],
        threads: int | None,
        time_limit_min: int | None = None,
    ):
        self.execute, self.spec, self.unit, self.steps = execute, spec, unit, list(steps)
        self.threads, self.time_limit_min = threads, time_limit_min
        self.results: dict[str, dict[str, Any]] = {}  # kept through a requeue
        self.stalls = 0  # requeues in a row after a time limit without progress
        self.at_start: Any = None
        self.started = time.time()

    def __call__(self) -> dict[str, dict[str, Any]]:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        set_worker_threads(self.threads)
        self.started, self.at_start = time.time(), self.progress()
        join_job_tasks()
        for step in self.steps:
            if step in self.results:
                log.info("%s: %s finished before the requeue", self.unit, step)
                continue
            log.info("%s: %s", self.unit, step)
            start = time.perf_counter()
            out = self.execute(self.spec, step)
            self.results[step] = {"outputs": out, "seconds": time.perf_counter() - start}
        return self.results

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit when the job is preempted or times out: a new call of this
        unit, which skips the steps already finished and resumes training from
        ``checkpoint_last.pt`` (the training step runs the trainer with ``resume=True``)."""
        from submitit.helpers import DelayedSubmission

        if self.timed_out() and self.progress() == self.at_start:
            self.stalls += 1
            if self.stalls >= MAX_STALLS:
                raise JobStalled(
                    f"{self.unit}: the time limit ({self.time_limit_min} min, --slurm-time) "
                    f"ended {self.stalls} attempts in a row before it saved anything new "
                    "(a checkpoint or a finished step); give the jobs more time"
                )
        else:
            self.stalls = 0
        log.warning(
            "%s: preempted or timed out; requeueing (resumes from the last checkpoint)", self.unit
        )
        return DelayedSubmission(self, *args, **kwargs)

    def progress(self) -> Any:
        """What this unit has done so far: its finished steps and what the workflow says
        each step wrote (``spec.progress(step)``: a training's checkpoint files)."""
        of = getattr(self.spec, "progress", None)
        return sorted(self.results), [of(s) if of else None for s in self.steps]

    def timed_out(self) -> bool:
        """Whether this attempt is at its time limit (SLURM warns 90 s before it), not
        preempted early."""
        if self.time_limit_min is None:
            return True
        return time.time() - self.started >= self.time_limit_min * 60 - 150


class JobStalled(RuntimeError):
    """A requeued job that never gets to a new checkpoint within its time limit."""


def join_job_tasks() -> None:
    """In a job with several tasks (``--slurm-gpus-per-job N``), export what
    `training.distributed.dist_info`/`init_group` read (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR, MASTER_PORT) from submitit's job environment; the trainer then joins the
    process group as under torchrun. Nothing to do with one task."""
    import submitit
    from submitit.helpers import TorchDistributedEnvironment

    env = submitit.JobEnvironment()
    if env.num_tasks <= 1:
        return
    dist = TorchDistributedEnvironment()  # master: first host; port: from the job id
    if env.cluster == "local":
        dist.master_addr = "127.0.0.1"
    dist.export(set_cuda_visible_devices=False, overwrite=True)
    import torch

    if torch.cuda.is_available():
        # LOCAL_RANK picks the card (runtime.device.resolve_device): the task's own card
        # among the job's, or card 0 where SLURM binds one card to each task
        os.environ["LOCAL_RANK"] = str(dist.local_rank % torch.cuda.device_count())
    log.info(
        "task %d of %d (local %s), master %s:%s",
        dist.rank,
        dist.world_size,
        os.environ["LOCAL_RANK"],
        dist.master_addr,
        dist.master_port,
    )


# -- the pool: run_jobs' cluster executor ----------------------------------------------------
class ClusterJobError(RuntimeError):
    """A cluster job ended without its result: the job, its error line and log path."""

    def __init__(self, job_id: str, message: str, log_path: str):
        self.job_id, self.message, self.log_path = job_id, message, log_path
        super().__init__(f"job {job_id}: {message} (log: {log_path})")


def error_line(exc: BaseException) -> str:
    """The line that names a job's error (the last line of its traceback when there is one)."""
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
    body = [x for x in lines if not set(x) <= {"-"}]
    if "----------------------" in str(exc):  # submitit's FailedJobError: trace between rules
        parts = str(exc).split("----------------------")
        trace = [x.strip() for x in parts[1].splitlines() if x.strip()] if len(parts) > 2 else []
        if trace:
            return trace[-1]
    if lines and lines[0].startswith("Job ") and "has not produced any output" in " ".join(lines):
        state = re.search(r"\(state: ([^)]*)\)", str(exc))
        return f"ended without a result (state {state.group(1) if state else 'unknown'})"
    return body[0] if body else type(exc).__name__


class SubmititPool(Pool):
    """`run_jobs`' pool of cluster jobs: `start` submits a unit (or adopts the job a
    previous orchestrator left running), `wait` polls until jobs end."""

    def __init__(
        self,
        submit: Callable[[str], Any],
        *,
        slots: int | None,
        poll_s: float,
        on_state: Callable[[str, Any, str], None],
        cancel_on_stop: bool,
        adopted: dict[str, Any] | None = None,
        queue: SlurmQueue | None = None,
    ):
        self.submit, self.slots, self.poll_s, self.queue = submit, slots, poll_s, queue
        self.on_state, self.cancel_on_stop = on_state, cancel_on_stop
        self.adopted = dict(adopted or {})
        self.running: dict[str, Any] = {}
        self.states: dict[str, str] = {}

    def room(self, running: int) -> int:
        return (self.slots - running) if self.slots else 1 << 30

    def start(self, name: str) -> None:
        job = self.adopted.pop(name, None)
        self.running[name] = job if job is not None else self.submit(name)

    def wait(self) -> list[Finished]:
        while True:
            ended = []
            if self.queue is not None:
                self.queue.refresh()
            for name, job in list(self.running.items()):
                state = job_state(job, self.queue)
                if state != self.states.get(name):
                    self.states[name] = state
                    self.on_state(name, job, state)
                if job_ended(job, self.queue):
                    del self.running[name]
                    ended.append(outcome(name, job, self.queue))
            if ended:
                return ended
            time.sleep(self.poll_s)

    def stop(self) -> None:
        if self.cancel_on_stop:
            for job in self.running.values():
                job.cancel(check=False)
        elif self.running:
            ids = " ".join(str(j.job_id) for j in self.running.values())
            print(
                f"ablation: {len(self.running)} job(s) keep running on the cluster ({ids}); "
                "rerun the same command to follow them, or scancel them",
                file=sys.stderr,
            )


def job_state(job: Any, queue: SlurmQueue | None = None) -> str:
    """The scheduler's state of a job (SLURM: squeue's, then sacct's)."""
    if queue is not None:
        return queue.state(str(job.job_id))
    if _local(job) and getattr(job, "_process", None) is None:
        if job.paths.result_pickle.exists():
            return "FINISHED"
        return "RUNNING" if _pid_alive(job.job_id) else "INTERRUPTED"
    try:
        return str(job.state)
    except Exception:  # sacct unavailable for a moment: keep polling
        return "UNKNOWN"


def job_ended(job: Any, queue: SlurmQueue | None = None) -> bool:
    """Whether a job is over: SLURM's has left the queue (a cancelled job's tasks may run
    on until KillWait), a local one wrote its result or its process is gone."""
    if queue is not None:
        return queue.gone(str(job.job_id))
    if job.paths.result_pickle.exists():
        return True
    if _local(job) and getattr(job, "_process", None) is None:  # adopted after a restart
        return not _pid_alive(job.job_id)
    return bool(job.done())


def outcome(name: str, job: Any, queue: SlurmQueue | None = None) -> Finished:
    """What an ended job gave: its unit's results, or a `ClusterJobError` (for SLURM with
    the state and cause sacct gives)."""
    task0 = job._sub_jobs[0] if getattr(job, "_sub_jobs", None) else job
    if _local(job):
        job._results_timeout_s = 1  # a local result file is there at once or never
    elif queue is not None:
        deadline = time.monotonic() + SETTLE_S
        while not task0.paths.result_pickle.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        if not task0.paths.result_pickle.exists():
            state, cause = queue.ended(str(job.job_id))
            message = f"ended without a result ({cause or state})"
            return Finished(name, error=ClusterJobError(str(job.job_id), message, _log(job)))
        job = task0
    try:
        results = job.results()[0]  # task 0's (under DDP, every task returns the same)
    except Exception as exc:
        message = error_line(exc)
        if queue is not None:
            message += f" (sacct: {queue.ended(str(task0.job_id))[1] or 'unknown'})"
        return Finished(name, error=ClusterJobError(str(job.job_id), message, _log(job)))
    seconds = sum(r["seconds"] for r in results.values())
    return Finished(name, results, seconds)


def _log(job: Any) -> str:
    """Where a job's log lines are: task 0's stderr."""
    task0 = job._sub_jobs[0] if getattr(job, "_sub_jobs", None) else job
    return str(task0.paths.stderr)


def _local(job: Any) -> bool:
    return type(job).__name__ == "LocalJob"


def _pid_alive(pid: str | int) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{int(pid)}/stat")
    try:
        return stat.read_text().split()[2] != "Z"
    except OSError:
        return True


# -- SLURM's view of the jobs: squeue while queued, sacct once they left ------------------------
class SlurmQueue:
    """The scheduler's state of this user's jobs, without submitit's sacct watcher: one
    ``squeue`` per look for the jobs still queued, running or completing, ``sacct`` only for
    a job that has left the queue (its final state and cause). A job has ended when it left
    the queue, not when sacct first says CANCELLED: a cancelled submitit job runs on until
    SLURM's KillWait kills it. Without accounting (sacct fails) the end is still seen, the
    cause is unknown, and that is logged once."""

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
        """(state, cause) of a job that left the queue, from sacct (waits up to SETTLE_S
        for slurmdbd to have its final state)."""
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


# -- executors -------------------------------------------------------------------------------
def slurm_parameters(opts: SlurmOptions, unit_kind_: str, profile: str) -> dict[str, Any]:
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


def local_parameters(opts: SlurmOptions, unit_kind_: str) -> dict[str, Any]:
    """submitit `LocalExecutor` values: the same tasks, GPUs and time limit."""
    return {
        "timeout_min": opts.time_min,
        "tasks_per_node": opts.tasks(unit_kind_),
        "gpus_per_node": opts.gpus(unit_kind_),
    }


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
    import shlex

    return [f"export PYTHONPATH={shlex.quote(str(root))}${{PYTHONPATH:+:$PYTHONPATH}}"]


def make_executor(opts: SlurmOptions, folder: Path, unit_kind_: str, profile: str) -> Any:
    """A submitit executor for one kind of unit (its jobs' resources), logs in `folder`."""
    try:
        import submitit
    except ImportError as exc:  # pragma: no cover - submitit is a dependency of [cluster]
        raise InputError(
            "the cluster launcher needs submitit: pip install 'e2net-eval[cluster]'"
        ) from exc
    if opts.executor == "local":
        ex = submitit.LocalExecutor(folder, max_num_timeout=MAX_REQUEUES)
        ex.update_parameters(**local_parameters(opts, unit_kind_))
        return ex
    try:
        ex = submitit.SlurmExecutor(folder, max_num_timeout=MAX_REQUEUES)
    except RuntimeError as exc:  # no srun on PATH
        raise InputError(f"--launcher slurm: {exc}") from exc
    ex.update_parameters(**slurm_parameters(opts, unit_kind_, profile))
    return ex


def reattach(opts: SlurmOptions, folder: Path, record: dict[str, Any]) -> Any:
    """The submitit job object of a job a previous orchestrator submitted."""
    import submitit

    cls = submitit.LocalJob if opts.executor == "local" else submitit.SlurmJob
    return cls(folder=folder, job_id=str(record["job_id"]), tasks=list(range(record["tasks"])))


def submit_env() -> dict[str, str]:
    """Environment of local-executor jobs: the orchestrator's code first on PYTHONPATH."""
    root = code_root()
    if root is None:
        return {}
    rest = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(root) + (os.pathsep + rest if rest else "")}


# -- the orchestrator ------------------------------------------------------------------------
def run_on_cluster(
    jobs: list[Job],
    *,
    execute: Callable[[Any, str], Any],
    spec: Any,
    book: Any,
    done: list[str],
    opts: SlurmOptions,
    run: Path,
    profile: str,
    threads: int | None,
    mark: Callable[[str, Any, float, str], None],
    echo: Callable[[str], None],
    kind_of: Callable[[str], str] = kind,
) -> None:
    """Run the steps of `jobs` not in `done` as cluster jobs, one per unit; `book` (a
    `workflows.state.StateBook`) holds the job records, `mark(step, outputs, seconds,
    job_id)` records a finished step. Raises `RunFailed` naming every failed job and its log
    once nothing else can run."""
    from submitit.helpers import clean_env

    from e2net_eval.errors import RunFailed
    from e2net_eval.rundir import jobs_dir
    from e2net_eval.workflows.jobs import JobsFailed, run_jobs

    units, members = group_units(jobs, kind_of)
    skip = set(done)
    todo = {u: [s for s in members[u] if s not in skip] for u in members}
    folder = jobs_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    executors: dict[str, Any] = {}

    def executor(kind_: str) -> Any:
        if kind_ not in executors:
            executors[kind_] = make_executor(opts, folder, kind_, profile)
        return executors[kind_]

    def update(unit: str, **values: Any) -> dict[str, Any]:
        record = {**(book.job(unit) or {}), **values}
        book.record_job(unit, record)
        return record

    def finished(unit: str, results: dict[str, dict[str, Any]], job_id: str) -> None:
        for step in members[unit]:
            if step in results:
                mark(step, results[step]["outputs"], results[step]["seconds"], job_id)
        update(unit, status="finished", state="COMPLETED", ended_at=_now())

    def failed(unit: str, exc: BaseException) -> None:
        job_id = getattr(exc, "job_id", None) or (book.job(unit) or {}).get("job_id")
        message = getattr(exc, "message", None) or error_line(exc)
        record = update(unit, status="failed", error=message, ended_at=_now())
        echo(f"FAILED {unit} (job {job_id}): {message}\n  log: {record.get('stderr')}")

    # jobs of an earlier orchestrator: follow those still running, take in what ended
    queue = SlurmQueue() if opts.executor == "slurm" else None
    if queue is not None:
        queue.refresh()
    adopted: dict[str, Any] = {}
    for unit in members:
        record = book.job(unit)
        if not todo[unit] or record is None:
            continue
        if _still_queued(record, queue):  # recorded failed, yet its tasks still run
            adopted[unit] = reattach(opts, folder, record)
            echo(
                f"following {unit}: job {record['job_id']} was recorded {record['status']} "
                f"but SLURM still has it ({queue.state(record['job_id'])}); waiting for its end"
            )
            continue
        if record.get("status") == "submitted":
            if record.get("executor") != opts.executor:
                raise InputError(
                    f"{unit} has job {record['job_id']} in flight through the "
                    f"{record.get('executor')} executor; rerun with that launcher "
                    "(or cancel the job and mark it failed)",
                    path=run,
                )
            job = reattach(opts, folder, record)
            if not job_ended(job, queue):
                adopted[unit] = job
                echo(f"following {unit}: job {record['job_id']} ({job_state(job, queue)})")
                continue
            end = outcome(unit, job, queue)
            if end.error is None:
                finished(unit, end.output, str(record["job_id"]))
                echo(f"{unit}: job {record['job_id']} finished while no one watched")
                todo[unit] = [s for s in todo[unit] if s not in end.output]
                continue
            failed(unit, end.error)
        record = book.job(unit)
        if record.get("status") == "failed":
            echo(
                f"resubmitting {unit}: job {record['job_id']} failed ({record.get('error')}); "
                f"log: {record.get('stderr')}"
            )
    done = [u for u in members if not todo[u]]

    def submit(unit: str) -> Any:
        kind_ = unit_kind(members[unit], kind_of)
        ex = executor(kind_)
        if opts.executor == "slurm":
            ex.update_parameters(job_name=f"e2net-{run.name}-{unit}".replace(":", "-"))
        call = UnitCall(execute, spec, unit, todo[unit], threads, opts.time_min)
        env = submit_env() if opts.executor == "local" else {}
        saved = {k: os.environ.get(k) for k in env}
        saved_conf = {k: os.environ[k] for k in ("SLURM_CONF",) if k in os.environ}
        os.environ.update(env)
        try:
            # an orchestrator inside a SLURM job must not pass its SLURM_*/RANK variables on
            with clean_env():
                if "SLURM_CONF" in saved_conf:  # the cluster's config, not the job's
                    os.environ["SLURM_CONF"] = saved_conf["SLURM_CONF"]
                job = _submitted(ex, call, unit)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        before = book.job(unit)
        earlier = list((before or {}).get("earlier", []))
        if before is not None:
            earlier.append(
                {k: before.get(k) for k in ("job_id", "status", "state", "error", "stderr")}
            )
        record = {
            "job_id": str(job.job_id),
            "executor": opts.executor,
            "status": "submitted",
            "state": "SUBMITTED",
            "kind": kind_,
            "tasks": opts.tasks(kind_),
            "gpus": opts.gpus(kind_),
            "steps": list(todo[unit]),
            "stdout": str(job.paths.stdout),
            "stderr": str(job.paths.stderr),
            "submitted_at": _now(),
            "attempt": len(earlier) + 1,
            "earlier": earlier,
        }
        if opts.executor == "slurm":
            record["sbatch"] = str(job.paths.submission_file)
        book.record_job(unit, record)
        echo(
            f"submitted {unit} as job {job.job_id} ({', '.join(todo[unit])}); log {job.paths.stderr}"
        )
        return job

    def on_state(unit: str, job: Any, state: str) -> None:
        if (book.job(unit) or {}).get("state") != state:
            update(unit, state=state)
            echo(f"{unit} (job {job.job_id}): {state}")

    def on_done(unit: str, results: Any, seconds: float) -> None:
        job_id = str((book.job(unit) or {}).get("job_id"))
        finished(unit, results, job_id)
        echo(f"finished {unit} (job {job_id}, {seconds:.0f} s)")

    pool = SubmititPool(
        submit,
        slots=opts.array_parallelism,
        poll_s=POLL_S[opts.executor],
        on_state=on_state,
        cancel_on_stop=opts.executor == "local",
        adopted=adopted,
        queue=queue,
    )
    echo(
        f"cluster: {len(members)} jobs ({', '.join(members)}), {len(members) - len(done)} to "
        f"run, {len(adopted)} of them still running; submitit {opts.executor} executor, "
        f"logs in {folder}"
    )
    try:
        run_jobs(units, pool=pool, done=done, on_done=on_done, on_fail=failed)
    except JobsFailed as exc:
        lines = [f"{len(exc.failed)} job(s) failed:"]
        for unit, err in exc.failed.items():
            record = book.job(unit) or {}
            lines.append(
                f"  {unit} (job {record.get('job_id')}): {getattr(err, 'message', err)}; "
                f"log: {record.get('stderr')}"
            )
        if exc.blocked:
            lines.append(f"  not started because of them: {', '.join(exc.blocked)}")
        lines.append("rerun the same command to resubmit them (finished jobs are kept)")
        raise RunFailed("\n".join(lines)) from None


def _still_queued(record: dict[str, Any], queue: SlurmQueue | None) -> bool:
    """A SLURM job recorded as ended that SLURM still has in its queue."""
    return (
        queue is not None
        and record.get("executor") == "slurm"
        and record.get("status") != "submitted"
        and not queue.gone(str(record["job_id"]))
    )


def _submitted(ex: Any, call: UnitCall, unit: str) -> Any:
    """``ex.submit(call)``; a job sbatch refuses is an input error (one line: sbatch's)."""
    from submitit.core.utils import FailedJobError

    try:
        return ex.submit(call)
    except FailedJobError as exc:
        raise InputError(f"sbatch refused the {unit} job: {sbatch_error(str(exc))}") from None


def sbatch_error(text: str) -> str:
    """sbatch's reason for refusing a job, on one line."""
    lines = [x.strip() for x in text.splitlines() if "error:" in x or "fatal:" in x]
    return " ".join(lines[-2:]) if lines else " ".join(text.split())[:300]


def check_submittable(opts: SlurmOptions, profile: str) -> None:
    """Ask ``sbatch --test-only`` whether SLURM would take each kind of job with these
    options (partition, memory, GPUs, time, extra options), before anything runs: a job it
    refuses is an input error (exit 2) naming the option, not a failure after `prepare`."""
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


def in_flight(book: Any) -> list[str]:
    """Units whose latest cluster job may still run (recorded as submitted and, for SLURM,
    still in squeue; or recorded failed while SLURM still has it): a local launcher must
    not train the same configuration beside it."""
    out = []
    queue: SlurmQueue | None = None
    for unit, record in book.jobs().items():
        if record.get("executor") == "slurm" and queue is None:
            queue = SlurmQueue()
            queue.refresh()  # without squeue here, a job recorded in flight may still run
        if record.get("status") != "submitted" and not _still_queued(record, queue):
            continue
        if record.get("executor") == "local" and not _pid_alive(record["job_id"]):
            continue
        if record.get("executor") == "slurm" and queue.gone(str(record["job_id"])):
            continue  # left SLURM's queue: a rerun takes in its outcome
        out.append(f"{unit} (job {record['job_id']}, {record.get('executor')})")
    return out


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
