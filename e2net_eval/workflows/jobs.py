"""Run a graph of named jobs, in this process or in N worker processes.

A job is a step of a workflow (``train:dist``, ``predict:ircadb:edge``): a name, the names
it depends on, and a cost estimate used to start long jobs first. `run_jobs` starts every
job whose dependencies are finished, up to `workers` at a time, longest first, and reports
each finished job through `on_done` in the calling process (which alone writes the
workflow's state). The work itself is `execute(spec, name)`, a module-level function, so it
can be sent to a worker process; `spec` carries what a job needs (picklable).

Determinism: a job's result depends only on its inputs, never on which process ran it or
when, so any worker count gives the same results (for the CPU, with the same torch thread
count per process, which `worker_threads` fixes).

Worker processes are started with ``spawn`` (no inherited torch thread pools or locks), die
with the parent on Linux (``PR_SET_PDEATHSIG``), and are terminated when a job fails or the
run is interrupted; a failed job's error is raised after the running jobs were stopped.
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


def run_jobs(
    jobs: Iterable[Job],
    execute: Callable[[Any, str], Any],
    spec: Any,
    *,
    workers: int = 1,
    done: Iterable[str] = (),
    on_start: Callable[[str], None] = lambda name: None,
    on_done: Callable[[str, Any, float], None] = lambda name, out, s: None,
    worker_threads: int | None = 1,
) -> None:
    """Run every job of `jobs` not in `done`, dependencies first; see the module docstring.

    ``workers <= 1`` runs the jobs one after another in this process, in the given order
    (dependencies permitting). `worker_threads` is the torch thread count of each worker
    process (None: torch's default).
    """
    jobs = check_graph(jobs, done)
    finished = set(done)
    todo = [j for j in jobs if j.name not in finished]
    if workers <= 1:
        while todo:
            job = next((j for j in todo if all(d in finished for d in j.deps)), None)
            if job is None:
                raise ValueError(f"dependency cycle among {[j.name for j in todo]}")
            on_start(job.name)
            start = time.perf_counter()
            out = execute(spec, job.name)
            on_done(job.name, out, time.perf_counter() - start)
            finished.add(job.name)
            todo.remove(job)
        return
    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_worker_init,
        initargs=(worker_threads, os.getpid()),
    )
    running: dict[cf.Future, tuple[str, float]] = {}
    try:
        while todo or running:
            ready = [j for j in todo if all(d in finished for d in j.deps)]
            ready.sort(key=lambda j: -j.cost)  # stable: equal costs keep the plan's order
            for job in ready[: max(workers - len(running), 0)]:
                on_start(job.name)
                running[pool.submit(_timed, execute, spec, job.name)] = (job.name, time.time())
                todo.remove(job)
            if not running:
                raise ValueError(f"dependency cycle among {[j.name for j in todo]}")
            complete, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for fut in complete:
                name, _ = running.pop(fut)
                out, seconds = fut.result()  # a job's exception propagates from here
                on_done(name, out, seconds)
                finished.add(name)
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)


def _timed(execute: Callable[[Any, str], Any], spec: Any, name: str) -> tuple[Any, float]:
    start = time.perf_counter()
    return execute(spec, name), time.perf_counter() - start


def _worker_init(threads: int | None, parent: int) -> None:
    """Die with the parent (`util.children`: SIGTERM from the kernel on Linux, a parent watch
    elsewhere), ignore Ctrl-C (the parent stops us), set torch threads."""
    die_with_parent(parent, signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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
