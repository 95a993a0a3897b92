"""Run a graph of named jobs: one scheduler (`run_jobs`), several pools to run a job in.

See docs/architecture.md, "The job graph and its executors". A job is a name, the names it
depends on, and a cost (longest chain first); `on_done` reports each finished job in the
calling process, which alone writes the state. The work is `execute(spec, name)`, a
module-level function with a picklable `spec`, so it can go to a worker or a cluster job.
Without `on_fail` the first failure stops the pool and is raised; with it, only its
dependants are skipped and `JobsFailed` is raised at the end. Workers are ``spawn``ed, die
with the parent (`util.children`) and are terminated when a job fails or on an interrupt.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from e2net_eval.util.children import die_with_parent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One node of the graph."""

    name: str
    deps: tuple[str, ...] = ()
    cost: float = 1.0  # relative duration estimate; the longest ready job starts first


def available_cores() -> int:
    """CPU cores this process may run on (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def resolved_device(device: str) -> str:
    """`auto` as the trainer resolves it (CUDA when available, else CPU), for the record."""
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        return "cpu"


def check_graph(jobs: Iterable[Job], done: Iterable[str] = ()) -> list[Job]:
    """The jobs as a list, after checking names are unique and every dependency exists."""
    jobs = list(jobs)
    names = {j.name for j in jobs} | set(done)
    if len(names) < len(jobs):
        raise ValueError("duplicate job names")
    for job in jobs:
        missing = [d for d in job.deps if d not in names]
        if missing:
            raise ValueError(f"job {job.name} depends on unknown {missing}")
    return jobs


@dataclass
class Finished:
    """A job that ended: its output and seconds, or the error it ended with."""

    name: str
    output: Any = None
    seconds: float = 0.0
    error: BaseException | None = None


class Pool:
    """Where the jobs of a graph run: `start` while `room()` allows, `wait` for an end, `stop`
    when the run is abandoned (a failure or an interrupt), `close` when it completed."""

    #: Start ready jobs longest chain first (False: in the graph's order).
    by_cost = True

    def room(self, running: int) -> int:
        raise NotImplementedError

    def start(self, name: str) -> None:
        raise NotImplementedError

    def wait(self) -> list[Finished]:
        raise NotImplementedError

    def stop(self) -> None:
        """Abandon what runs (default: nothing to do)."""

    def close(self) -> None:
        """Every job ended (default: nothing to do)."""


class InlinePool(Pool):
    """One job at a time, in this process, in the graph's order."""

    by_cost = False

    def __init__(self, execute: Callable[[Any, str], Any], spec: Any):
        self.execute, self.spec = execute, spec
        self.pending: list[str] = []

    def room(self, running: int) -> int:
        return 1 - running

    def start(self, name: str) -> None:
        self.pending.append(name)

    def wait(self) -> list[Finished]:
        name = self.pending.pop(0)
        start = time.perf_counter()
        try:
            out = self.execute(self.spec, name)
        except Exception as exc:
            return [Finished(name, error=exc)]
        return [Finished(name, out, time.perf_counter() - start)]


class ProcessPool(Pool):
    """`workers` spawned processes on this machine (see the module docstring)."""

    def __init__(
        self,
        execute: Callable[[Any, str], Any],
        spec: Any,
        workers: int,
        worker_threads: int | None = 1,
    ):
        self.execute, self.spec, self.workers = execute, spec, workers
        ctx = multiprocessing.get_context("spawn")
        self.pool = cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_worker_init,
            initargs=(worker_threads, os.getpid()),
        )
        self.running: dict[cf.Future, str] = {}

    def room(self, running: int) -> int:
        return self.workers - running

    def start(self, name: str) -> None:
        self.running[self.pool.submit(_timed, self.execute, self.spec, name)] = name

    def wait(self) -> list[Finished]:
        complete, _ = cf.wait(self.running, return_when=cf.FIRST_COMPLETED)
        ended = []
        for fut in complete:
            name = self.running.pop(fut)
            try:
                out, seconds = fut.result()
            except Exception as exc:
                ended.append(Finished(name, error=exc))
            else:
                ended.append(Finished(name, out, seconds))
        return ended

    def stop(self) -> None:
        _stop(self.pool)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class JobsFailed(RuntimeError):
    """Jobs of a graph failed (`run_jobs` with `on_fail`): which, and which never started."""

    def __init__(self, failed: dict[str, BaseException], blocked: list[str]):
        self.failed, self.blocked = failed, blocked
        text = f"{len(failed)} job(s) failed: {', '.join(failed)}"
        if blocked:
            text += f"; not started because of them: {', '.join(blocked)}"
        super().__init__(text)


def local_pool(
    execute: Callable[[Any, str], Any], spec: Any, workers: int = 1, threads: int | None = 1
) -> Pool:
    """``workers <= 1``: an `InlinePool`; more: a `ProcessPool` of `threads` torch threads each."""
    if workers <= 1:
        return InlinePool(execute, spec)
    return ProcessPool(execute, spec, workers, threads)


def run_jobs(
    jobs: Iterable[Job],
    pool: Pool,
    *,
    done: Iterable[str] = (),
    on_start: Callable[[str], None] = lambda name: None,
    on_done: Callable[[str, Any, float], None] = lambda name, out, s: None,
    on_fail: Callable[[str, BaseException], None] | None = None,
) -> None:
    """Run every job of `jobs` not in `done` in `pool`, dependencies first."""
    jobs = check_graph(jobs, done)
    finished = set(done)
    todo = [j for j in jobs if j.name not in finished]
    failed: dict[str, BaseException] = {}
    running = 0
    try:
        while todo or running:
            running += _start_ready(todo, finished, pool, running, on_start)
            if not running:
                if failed:  # what is left waits on a failed job
                    break
                raise ValueError(f"dependency cycle among {[j.name for j in todo]}")
            for end in pool.wait():
                running -= 1
                if end.error is None:
                    on_done(end.name, end.output, end.seconds)
                    finished.add(end.name)
                elif on_fail is None:
                    raise end.error
                else:
                    failed[end.name] = end.error
                    on_fail(end.name, end.error)
    except BaseException:
        pool.stop()
        raise
    pool.close()
    if failed:
        raise JobsFailed(failed, [j.name for j in todo])


def _start_ready(
    todo: list[Job], finished: set[str], pool: Pool, running: int, on_start: Callable
) -> int:
    """Start the ready jobs of `todo` the pool has room for; returns how many started."""
    ready = [j for j in todo if all(d in finished for d in j.deps)]
    if pool.by_cost:
        ready.sort(key=lambda j: -j.cost)  # stable: equal costs keep the plan's order
    ready = ready[: max(pool.room(running), 0)]
    for job in ready:
        on_start(job.name)
        pool.start(job.name)
        todo.remove(job)
    return len(ready)


def _timed(execute: Callable[[Any, str], Any], spec: Any, name: str) -> tuple[Any, float]:
    start = time.perf_counter()
    return execute(spec, name), time.perf_counter() - start


def _worker_init(threads: int | None, parent: int) -> None:
    """Die with the parent, ignore Ctrl-C (the parent stops us), set torch threads."""
    die_with_parent(parent, signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_worker_threads(threads)


def set_worker_threads(threads: int | None) -> None:
    """A worker's torch thread count (None: torch's default), unless OMP_NUM_THREADS says."""
    if threads is not None and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """Cancel queued jobs and terminate the worker processes now."""
    procs = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=10)
