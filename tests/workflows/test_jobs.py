"""The job graph runner behind `ablation --workers`: dependencies, parallelism, failures,
and worker processes that do not outlive the run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2net_eval.workflows.jobs import Job, JobsFailed, check_graph, local_pool, run_jobs

GRAPH = [
    Job("a", (), 1),
    Job("b", (), 5),
    Job("c", ("a", "b"), 1),
    Job("d", ("a",), 2),
    Job("e", ("c", "d"), 1),
]


def record(spec: dict, name: str) -> dict:
    """A job: checks its dependencies finished before it started, leaves a marker."""
    folder = Path(spec["dir"])
    deps = {j.name: j.deps for j in GRAPH}[name]
    missing = [d for d in deps if not (folder / f"{d}.done").exists()]
    (folder / f"{name}.start").write_text(str(time.time()))
    if missing:
        raise RuntimeError(f"{name} started before {missing}")
    if name == spec.get("fail"):
        raise ValueError(f"{name} failed")
    time.sleep(spec.get("sleep", 0.0))
    (folder / f"{name}.done").write_text(str(os.getpid()))
    return {"job": name, "pid": os.getpid()}


@pytest.mark.parametrize("workers", [1, 2])
def test_every_job_runs_once_after_its_dependencies(tmp_path, workers):
    finished = []
    run_jobs(
        GRAPH,
        local_pool(record, {"dir": str(tmp_path), "sleep": 0.5 * workers}, workers),
        on_done=lambda name, out, s: finished.append((name, out["job"])),
    )
    assert sorted(n for n, _ in finished) == ["a", "b", "c", "d", "e"]
    assert all(n == j for n, j in finished)
    pids = {(tmp_path / f"{n}.done").read_text() for n in "abcde"}
    if workers == 1:
        assert [n for n, _ in finished] == ["a", "b", "c", "d", "e"]  # the given order
        assert pids == {str(os.getpid())}
    else:
        assert str(os.getpid()) not in pids and len(pids) == 2  # two worker processes
        # a and b ran at the same time: each started before the other finished
        start = {n: float((tmp_path / f"{n}.start").read_text()) for n in "ab"}
        end = {n: (tmp_path / f"{n}.done").stat().st_mtime for n in "ab"}
        assert start["a"] < end["b"] and start["b"] < end["a"]


def test_done_jobs_are_skipped(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.done").write_text("earlier")
    seen = []
    pool = local_pool(record, {"dir": str(tmp_path)})
    run_jobs(GRAPH, pool, done=["a", "b"], on_start=seen.append)
    assert seen == ["c", "d", "e"]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failure_stops_the_run_and_names_the_error(tmp_path, workers):
    finished = []
    with pytest.raises(ValueError, match="c failed"):
        run_jobs(
            GRAPH,
            local_pool(record, {"dir": str(tmp_path), "fail": "c"}, workers),
            on_done=lambda name, out, s: finished.append(name),
        )
    assert "c" not in finished and "e" not in finished
    assert not (tmp_path / "e.start").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_with_on_fail_the_others_run_on_and_the_blocked_are_named(tmp_path, workers):
    """A cluster run: a failed job stops only what depends on it (here c and e)."""
    finished, failed = [], []
    with pytest.raises(JobsFailed) as info:
        run_jobs(
            GRAPH,
            local_pool(record, {"dir": str(tmp_path), "fail": "c"}, workers),
            on_done=lambda name, out, s: finished.append(name),
            on_fail=lambda name, exc: failed.append((name, str(exc))),
        )
    assert sorted(finished) == ["a", "b", "d"] and failed == [("c", "c failed")]
    assert info.value.blocked == ["e"] and list(info.value.failed) == ["c"]
    assert not (tmp_path / "e.start").exists()


def test_graph_errors():
    with pytest.raises(ValueError, match="unknown"):
        check_graph([Job("a", ("nope",))])
    with pytest.raises(ValueError, match="duplicate"):
        check_graph([Job("a"), Job("a")])
    with pytest.raises(ValueError, match="cycle"):
        run_jobs([Job("a", ("b",)), Job("b", ("a",))], local_pool(record, {"dir": "."}))


def sleeper(spec: dict, name: str) -> None:
    Path(spec["dir"], f"{name}.pid").write_text(str(os.getpid()))
    time.sleep(120)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_a_killed_parent(tmp_path):
    """SIGKILL leaves the parent no chance to clean up: the kernel must stop the workers."""
    script = (
        "import sys;"
        "from tests.workflows.test_jobs import sleeper;"
        "from e2net_eval.workflows.jobs import Job, local_pool, run_jobs;"
        "run_jobs([Job('x'), Job('y')], local_pool(sleeper, {'dir': sys.argv[1]}, 2))"
    )
    repo = Path(__file__).resolve().parents[2]
    path = os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], env={**os.environ, "PYTHONPATH": path}
    )
    pid_files = [tmp_path / "x.pid", tmp_path / "y.pid"]
    deadline = time.time() + 60
    while not all(p.exists() for p in pid_files) and time.time() < deadline:
        time.sleep(0.1)
    workers = [int(p.read_text()) for p in pid_files]
    assert all(_alive(pid) for pid in workers)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 20
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), json.dumps(workers)
