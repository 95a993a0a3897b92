"""submitit, all of it: executors, the callable a job runs, following jobs, their outcome.

Every use of submitit's API (and of its private attributes) is here. A unit's job runs
`UnitCall`; requeue on preemption: docs/cluster.md, "Resuming, failures, preemption".
submitit is imported only when a cluster run starts: ``pip install 'e2net-eval[cluster]'``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from e2net_eval.errors import InputError
from e2net_eval.workflows.jobs import Finished, Pool, set_worker_threads
from e2net_eval.workflows.launch.base import SLURM, SUBMITIT_LOCAL
from e2net_eval.workflows.launch.slurm import (
    SETTLE_S,
    SlurmOptions,
    SlurmQueue,
    code_root,
    sbatch_error,
    slurm_parameters,
)

log = logging.getLogger(__name__)

#: submitit's executor of each cluster launcher, as the job records in the state file name it.
EXECUTORS = {SLURM: "slurm", SUBMITIT_LOCAL: "local"}
#: How often a preempted or timed-out job may be requeued (submitit's max_num_timeout).
MAX_REQUEUES = 20
#: Seconds between two looks at the jobs (one squeue for all; sacct once a job has left),
#: by submitit executor.
POLL_S = {"slurm": 15.0, "local": 0.5}
#: Requeues in a row after a time limit without a new checkpoint before a job gives up
#: (its --slurm-time is too short for one checkpoint).
MAX_STALLS = 2


class UnitCall:
    """The callable a cluster job runs: one unit's steps in order through `execute(spec,
    step)`; returns ``{step: {"outputs", "seconds"}}``. `checkpoint` makes it requeueable."""

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
        """Called by submitit on preemption or time-out: a new call of this unit, which skips
        finished steps and resumes training (docs/cluster.md, "Resuming")."""
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
        """Whether this attempt is at its time limit (SLURM warns 90 s before), not preempted."""
        if self.time_limit_min is None:
            return True
        return time.time() - self.started >= self.time_limit_min * 60 - 150


class JobStalled(RuntimeError):
    """A requeued job that never gets to a new checkpoint within its time limit."""


def join_job_tasks() -> None:
    """In a job with several tasks, export RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
    MASTER_PORT from submitit's job environment, so the trainer joins as under torchrun."""
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
    """`run_jobs`' pool of cluster jobs: `start` submits (or adopts) a unit's job, `wait` polls."""

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
        return "RUNNING" if pid_alive(job.job_id) else "INTERRUPTED"
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
        return not pid_alive(job.job_id)
    return bool(job.done())


def outcome(name: str, job: Any, queue: SlurmQueue | None = None) -> Finished:
    """What an ended job gave: its unit's results, or a `ClusterJobError`."""
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


def pid_alive(pid: str | int) -> bool:
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


def _local(job: Any) -> bool:
    return type(job).__name__ == "LocalJob"


def local_parameters(opts: SlurmOptions, unit_kind_: str) -> dict[str, Any]:
    """submitit `LocalExecutor` values: the same tasks, GPUs and time limit."""
    return {
        "timeout_min": opts.time_min,
        "tasks_per_node": opts.tasks(unit_kind_),
        "gpus_per_node": opts.gpus(unit_kind_),
    }


def make_executor(
    executor: str, opts: SlurmOptions, folder: Path, unit_kind_: str, profile: Any
) -> Any:
    """A submitit executor (``slurm``/``local``) for one kind of unit, logs in `folder`."""
    try:
        import submitit
    except ImportError as exc:  # pragma: no cover - submitit is a dependency of [cluster]
        raise InputError(
            "the cluster launcher needs submitit: pip install 'e2net-eval[cluster]'"
        ) from exc
    if executor == "local":
        ex = submitit.LocalExecutor(folder, max_num_timeout=MAX_REQUEUES)
        ex.update_parameters(**local_parameters(opts, unit_kind_))
        return ex
    try:
        ex = submitit.SlurmExecutor(folder, max_num_timeout=MAX_REQUEUES)
    except RuntimeError as exc:  # no srun on PATH
        raise InputError(f"--launcher slurm: {exc}") from exc
    ex.update_parameters(**slurm_parameters(opts, unit_kind_, profile))
    return ex


def reattach(executor: str, folder: Path, record: dict[str, Any]) -> Any:
    """The submitit job object of a job a previous orchestrator submitted."""
    import submitit

    cls = submitit.LocalJob if executor == "local" else submitit.SlurmJob
    return cls(folder=folder, job_id=str(record["job_id"]), tasks=list(range(record["tasks"])))


def submit(ex: Any, call: UnitCall, executor: str) -> Any:
    """``ex.submit(call)`` with the orchestrator's code first on a local job's PYTHONPATH, without
    its own SLURM_*/RANK variables; a job sbatch refuses is an input error (sbatch's line)."""
    from submitit.core.utils import FailedJobError
    from submitit.helpers import clean_env

    env = _local_env() if executor == "local" else {}
    saved = {k: os.environ.get(k) for k in env}
    slurm_conf = os.environ.get("SLURM_CONF")
    os.environ.update(env)
    try:
        with clean_env():
            if slurm_conf is not None:  # the cluster's config, not the job's
                os.environ["SLURM_CONF"] = slurm_conf
            return ex.submit(call)
    except FailedJobError as exc:
        raise InputError(f"sbatch refused the {call.unit} job: {sbatch_error(str(exc))}") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _local_env() -> dict[str, str]:
    """Environment of local-executor jobs: the orchestrator's code first on PYTHONPATH."""
    root = code_root()
    if root is None:
        return {}
    rest = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(root) + (os.pathsep + rest if rest else "")}


def job_paths(job: Any) -> dict[str, str]:
    """A submitted job's log files (and, for SLURM, its sbatch script) as recorded."""
    paths = {"stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr)}
    if type(job).__name__ == "SlurmJob":
        paths["sbatch"] = str(job.paths.submission_file)
    return paths
