"""``ablation --launcher slurm`` on a real one-node SLURM cluster (`tools/slurm-local.sh`:
slurmctld, slurmd, munge, slurmdbd + MariaDB for sacct, two fake GPUs), each outcome checked
against a ``--launcher local`` run of the same settings (summaries and weight digests equal,
and `regress` at tolerance 0 both ways).

Slow (a cluster and several tiny trainings on a 2-core machine); `.ci/run` starts the
cluster and runs them. Interruptions in the middle of a training come from
`interrupt_hook/sitecustomize.py` on the jobs' PYTHONPATH (a marker file per event).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2net_eval.workflows import cluster

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HOOK = HERE / "interrupt_hook"
sys.path.insert(0, str(HERE))
from real_slurm import sacct_state, slurm_cluster, squeue  # noqa: E402,F401
from test_cluster_e2e import _results, _state  # noqa: E402

pytestmark = pytest.mark.slow

#: Stage 1 only, on six phantom cases, 30 steps (epoch 0 is 25): a checkpoint at step 25.
STEPS = "30"
SLURM = ["--launcher", "slurm", "--slurm-gpus-per-job", "1", "--slurm-cpus-per-job", "1"]
SLURM += ["--slurm-time", "30"]


@pytest.fixture(scope="module")
def tiny_lits(tmp_path_factory):
    from e2net_eval.data import write_phantom

    root = tmp_path_factory.mktemp("tiny") / "lits"
    write_phantom(root, "lits", 6, seed=0)
    return root


def _common(lits: Path, steps: str = STEPS) -> list[str]:
    return ["--lits", str(lits), "--configs", "stage1", "--max-steps", steps, "--device", "cpu"]


@pytest.fixture(scope="module")
def local_run(tiny_lits, tmp_path_factory):
    """The reference: the same ablation through ``--launcher local``."""
    from e2net_eval.cli import main

    run = tmp_path_factory.mktemp("local") / "run"
    with pytest.raises(SystemExit) as exc:
        main(["ablation", *_common(tiny_lits), "-o", str(run)])
    assert exc.value.code in (0, None)
    return run


@pytest.fixture
def cluster_env(monkeypatch, slurm_cluster):
    """Jobs see the interrupt hook; the orchestrator looks at them every second."""
    monkeypatch.setenv("PYTHONPATH", f"{HOOK}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.delenv("E2NET_TEST_INTERRUPT", raising=False)
    monkeypatch.setitem(cluster.POLL_S, "slurm", 1.0)
    return monkeypatch


def _same_as_local(run: Path, local: Path, run_cli) -> None:
    assert _results(run) == _results(local) and len(_results(run)) == 2
    for a, b in ((run, local), (local, run)):
        code, out, err = run_cli("regress", a, b)
        assert code == 0, out + err


def _orchestrator(args: list[str]) -> subprocess.Popen:
    """An orchestrating process of its own (to be killed), its stderr in a pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "e2net_eval", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ['PYTHONPATH']}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate, what: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _job(run: Path, unit: str) -> dict:
    path = run / "ablation_state.json"
    return _state(run).get("jobs", {}).get(unit, {}) if path.is_file() else {}


def _running_training(run: Path) -> str:
    """Wait until the training job runs and wrote its first step; its id."""
    _wait_for(lambda: _job(run, "train:stage1").get("job_id"), "the training job")
    job_id = _job(run, "train:stage1")["job_id"]
    metrics = run / "train" / "stage1" / "metrics.jsonl"
    _wait_for(lambda: squeue(job_id) == "RUNNING" and metrics.is_file(), "training to run")
    return job_id


# -- 1. a clean ablation -----------------------------------------------------------------------
def test_clean_ablation_equals_the_local_run(tmp_path, run_cli, cluster_env, tiny_lits, local_run):
    run = tmp_path / "run"
    code, out, err = run_cli("ablation", *_common(tiny_lits), "-o", run, *SLURM)
    assert code == 0, err
    jobs = _state(run)["jobs"]
    assert list(jobs) == ["prepare", "train:stage1", "score:stage1", "report"]
    for unit, record in jobs.items():
        assert record["status"] == "finished" and record["attempt"] == 1, unit
        assert sacct_state(record["job_id"]) == "COMPLETED", unit
    ids = [int(jobs[u]["job_id"]) for u in jobs]
    assert ids == sorted(ids)  # each submitted after the one it needs
    assert (run / "report" / "report.html").is_file() and "report.html" in out
    _same_as_local(run, local_run, run_cli)
