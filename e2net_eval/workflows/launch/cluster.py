"""The ``slurm`` and ``submitit-local`` launchers: the graph as cluster jobs, one per unit.

`launch.units` groups the steps into units; `workflows.jobs.run_jobs` runs the unit graph
with a `SubmititPool`. Submission as dependencies finish, following jobs and resubmission:
docs/cluster.md ("What runs as which job", "Resuming, failures, preemption").
"""

from __future__ import annotations

import shutil
import time
from typing import Any

from e2net_eval.errors import InputError, RunFailed
from e2net_eval.rundir import jobs_dir
from e2net_eval.workflows.jobs import JobsFailed, run_jobs
from e2net_eval.workflows.launch import submitit as sub
from e2net_eval.workflows.launch.base import SLURM, Launcher, Work
from e2net_eval.workflows.launch.slurm import SlurmOptions, SlurmQueue, check_submittable
from e2net_eval.workflows.launch.units import group_units, unit_kind


class SubmititLauncher(Launcher):
    """`name` is ``slurm`` (sbatch) or ``submitit-local`` (submitit's `LocalExecutor`)."""

    remote = True

    def __init__(self, name: str, profile: Any, opts: SlurmOptions | None):
        self.name, self.profile, self.opts = name, profile, opts or SlurmOptions()
        self.executor = sub.EXECUTORS[name]

    def check(self) -> None:
        if self.name == SLURM and (shutil.which("sbatch") is None or shutil.which("srun") is None):
            raise InputError(
                "--launcher slurm: no sbatch/srun on PATH (run it on a SLURM login node)"
            )
        tasks, batch = self.opts.tasks("train"), self.profile.train["batch_size"]
        if batch % tasks:
            raise InputError(
                f"--slurm-gpus-per-job {tasks}: the {self.profile.name} profile's batch of "
                f"{batch} does not split evenly over that many processes"
            )
        if self.name == SLURM:  # a job SLURM refuses: exit 2 now, before any work
            check_submittable(self.opts, self.profile)

    def run(self, work: Work) -> None:
        """Run the steps not done as cluster jobs; `RunFailed` names each failed job and its log."""
        work.announce(f"launcher {self.name}")
        _Orchestrator(self, work).run()


class _Orchestrator:
    """One cluster run: the units, their job records (`work.book`), the jobs in flight."""

    def __init__(self, launcher: SubmititLauncher, work: Work):
        self.launcher, self.opts, self.work, self.book = launcher, launcher.opts, work, work.book
        self.executor = launcher.executor
        self.units, self.members = group_units(work.jobs, work.kind_of)
        skip = set(work.done)
        self.todo = {u: [s for s in m if s not in skip] for u, m in self.members.items()}
        self.folder = jobs_dir(work.run)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.executors: dict[str, Any] = {}
        self.queue = SlurmQueue() if self.executor == "slurm" else None
        self.adopted: dict[str, Any] = {}

    def run(self) -> None:
        if self.queue is not None:
            self.queue.refresh()
        for unit in self.members:
            if self.todo[unit] and self.book.job(unit) is not None:
                self.take_over(unit)
        done = [u for u in self.members if not self.todo[u]]
        pool = sub.SubmititPool(
            self.submit,
            slots=self.opts.array_parallelism,
            poll_s=sub.POLL_S[self.executor],
            on_state=self.on_state,
            cancel_on_stop=self.executor == "local",
            adopted=self.adopted,
            queue=self.queue,
        )
        self.work.echo(
            f"cluster: {len(self.members)} jobs ({', '.join(self.members)}), "
            f"{len(self.members) - len(done)} to run, {len(self.adopted)} of them still "
            f"running; submitit {self.executor} executor, logs in {self.folder}"
        )
        try:
            run_jobs(self.units, pool, done=done, on_done=self.on_done, on_fail=self.failed)
        except JobsFailed as exc:
            raise RunFailed(self.failure_report(exc)) from None

    # -- jobs of an earlier orchestrator: follow those still running, take in what ended --
    def take_over(self, unit: str) -> None:
        record, echo = self.book.job(unit), self.work.echo
        if still_queued(record, self.queue):  # recorded failed, yet its tasks still run
            self.adopted[unit] = sub.reattach(self.executor, self.folder, record)
            echo(
                f"following {unit}: job {record['job_id']} was recorded {record['status']} "
                f"but SLURM still has it ({self.queue.state(record['job_id'])}); waiting for "
                "its end"
            )
            return
        if record.get("status") == "submitted" and not self.take_in(unit, record):
            return
        record = self.book.job(unit)
        if record.get("status") == "failed":
            echo(
                f"resubmitting {unit}: job {record['job_id']} failed ({record.get('error')}); "
                f"log: {record.get('stderr')}"
            )

    def take_in(self, unit: str, record: dict[str, Any]) -> bool:
        """A job recorded in flight: follow it or take in its end; True when it failed."""
        if record.get("executor") != self.executor:
            raise InputError(
                f"{unit} has job {record['job_id']} in flight through the "
                f"{record.get('executor')} executor; rerun with that launcher "
                "(or cancel the job and mark it failed)",
                path=self.work.run,
            )
        job = sub.reattach(self.executor, self.folder, record)
        if not sub.job_ended(job, self.queue):
            self.adopted[unit] = job
            self.work.echo(
                f"following {unit}: job {record['job_id']} ({sub.job_state(job, self.queue)})"
            )
            return False
        end = sub.outcome(unit, job, self.queue)
        if end.error is not None:
            self.failed(unit, end.error)
            return True
        self.finished(unit, end.output, str(record["job_id"]))
        self.work.echo(f"{unit}: job {record['job_id']} finished while no one watched")
        self.todo[unit] = [s for s in self.todo[unit] if s not in end.output]
        return False

    def submit(self, unit: str) -> Any:
        kind = unit_kind(self.members[unit], self.work.kind_of)
        if kind not in self.executors:
            self.executors[kind] = sub.make_executor(
                self.executor, self.opts, self.folder, kind, self.launcher.profile
            )
        ex = self.executors[kind]
        if self.executor == "slurm":
            ex.update_parameters(job_name=f"e2net-{self.work.run.name}-{unit}".replace(":", "-"))
        w = self.work
        call = sub.UnitCall(w.execute, w.spec, unit, self.todo[unit], w.threads, self.opts.time_min)
        job = sub.submit(ex, call, self.executor)
        self.book.record_job(unit, self.submitted_record(unit, kind, job))
        w.echo(
            f"submitted {unit} as job {job.job_id} ({', '.join(self.todo[unit])}); "
            f"log {job.paths.stderr}"
        )
        return job

    def submitted_record(self, unit: str, kind: str, job: Any) -> dict[str, Any]:
        """The job record of a new submission (the earlier attempts' records kept in it)."""
        before = self.book.job(unit)
        earlier = list((before or {}).get("earlier", []))
        if before is not None:
            earlier.append(
                {k: before.get(k) for k in ("job_id", "status", "state", "error", "stderr")}
            )
        paths = sub.job_paths(job)
        record = {
            "job_id": str(job.job_id),
            "executor": self.executor,
            "status": "submitted",
            "state": "SUBMITTED",
            "kind": kind,
            "tasks": self.opts.tasks(kind),
            "gpus": self.opts.gpus(kind),
            "steps": list(self.todo[unit]),
            "stdout": paths["stdout"],
            "stderr": paths["stderr"],
            "submitted_at": _now(),
            "attempt": len(earlier) + 1,
            "earlier": earlier,
        }
        if self.executor == "slurm":
            record["sbatch"] = paths["sbatch"]
        return record

    def update(self, unit: str, **values: Any) -> dict[str, Any]:
        record = {**(self.book.job(unit) or {}), **values}
        self.book.record_job(unit, record)
        return record

    def finished(self, unit: str, results: dict[str, dict[str, Any]], job_id: str) -> None:
        for step in self.members[unit]:
            if step in results:
                self.work.mark(step, results[step]["outputs"], results[step]["seconds"], job_id)
        self.update(unit, status="finished", state="COMPLETED", ended_at=_now())

    def failed(self, unit: str, exc: BaseException) -> None:
        job_id = getattr(exc, "job_id", None) or (self.book.job(unit) or {}).get("job_id")
        message = getattr(exc, "message", None) or sub.error_line(exc)
        record = self.update(unit, status="failed", error=message, ended_at=_now())
        self.work.echo(f"FAILED {unit} (job {job_id}): {message}\n  log: {record.get('stderr')}")

    def on_state(self, unit: str, job: Any, state: str) -> None:
        if (self.book.job(unit) or {}).get("state") != state:
            self.update(unit, state=state)
            self.work.echo(f"{unit} (job {job.job_id}): {state}")

    def on_done(self, unit: str, results: Any, seconds: float) -> None:
        job_id = str((self.book.job(unit) or {}).get("job_id"))
        self.finished(unit, results, job_id)
        self.work.echo(f"finished {unit} (job {job_id}, {seconds:.0f} s)")

    def failure_report(self, exc: JobsFailed) -> str:
        """Exit 4's message: every failed job with its error and log, what they blocked."""
        lines = [f"{len(exc.failed)} job(s) failed:"]
        for unit, err in exc.failed.items():
            record = self.book.job(unit) or {}
            lines.append(
                f"  {unit} (job {record.get('job_id')}): {getattr(err, 'message', err)}; "
                f"log: {record.get('stderr')}"
            )
        if exc.blocked:
            lines.append(f"  not started because of them: {', '.join(exc.blocked)}")
        lines.append("rerun the same command to resubmit them (finished jobs are kept)")
        return "\n".join(lines)


def in_flight(book: Any) -> list[str]:
    """Units whose latest cluster job may still run (for SLURM: still in squeue, even if
    recorded failed): a local launcher must not train beside it."""
    out = []
    queue: SlurmQueue | None = None
    for unit, record in book.jobs().items():
        if record.get("executor") == "slurm" and queue is None:
            queue = SlurmQueue()
            queue.refresh()  # without squeue here, a job recorded in flight may still run
        if record.get("status") != "submitted" and not still_queued(record, queue):
            continue
        if record.get("executor") == "local" and not sub.pid_alive(record["job_id"]):
            continue
        if record.get("executor") == "slurm" and queue.gone(str(record["job_id"])):
            continue  # left SLURM's queue: a rerun takes in its outcome
        out.append(f"{unit} (job {record['job_id']}, {record.get('executor')})")
    return out


def still_queued(record: dict[str, Any], queue: SlurmQueue | None) -> bool:
    """A SLURM job recorded as ended that SLURM still has in its queue."""
    return (
        queue is not None
        and record.get("executor") == "slurm"
        and record.get("status") != "submitted"
        and not queue.gone(str(record["job_id"]))
    )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
