"""The ablation through the cluster launcher, end to end, without a cluster.

- submitit's local executor (``--launcher submitit-local``) runs the very job functions a
  SLURM job runs, as subprocesses: results equal ``--launcher local`` at the same seed; a
  training killed mid-epoch fails its job, the rerun resubmits only that job (and what
  waited on it) and resumes from the checkpoint; a preempted training (SIGUSR2, what SLURM
  sends before a preemption or the time limit) is requeued and resumes in the same run.
- a stand-in SLURM (`tests/helpers/fake_slurm.py`: sbatch, srun, sacct, scontrol) runs the real
  ``--launcher slurm`` path: sbatch scripts, job ids, sacct states, DDP over two tasks from
  the SLURM environment, a requeue after preemption, and an orchestrator killed while its
  jobs run (the rerun follows them instead of submitting them again).

Interruptions come from `interrupt_hook/sitecustomize.py` on the jobs' PYTHONPATH: after a
given optimiser step, rank 0 of a given training signals itself, once.
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

from e2net_eval.workflows.launch import submitit as cluster
from tests.helpers import fake_slurm

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HOOK = HERE / "interrupt_hook"


@pytest.fixture
def jobs_env(monkeypatch):
    """Jobs see the interrupt hook; the orchestrator looks at them often."""
    monkeypatch.setenv("PYTHONPATH", f"{HOOK}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.delenv("E2NET_TEST_INTERRUPT", raising=False)
    monkeypatch.setitem(cluster.POLL_S, "slurm", 0.5)
    monkeypatch.setitem(cluster.POLL_S, "local", 0.3)
    return monkeypatch


def _results(run: Path) -> dict:
    """What must not depend on the launcher: every summary without its meta (times, hosts)
    and every trained configuration's weights digest."""
    out = {}
    for pattern in ("eval/*/*/summary.json", "replicates/*/eval/*/*/summary.json"):
        for path in sorted(run.glob(pattern)):
            summary = json.loads(path.read_text())
            summary.pop("meta")
            out[str(path.relative_to(run))] = summary
    for path in sorted(
        [*run.glob("train/*/done.json"), *run.glob("replicates/*/train/*/done.json")]
    ):
        out[str(path.relative_to(run))] = json.loads(path.read_text())["weights_sha256"]
    return out


def _state(run: Path) -> dict:
    return json.loads((run / "ablation_state.json").read_text())


def _job_ids(run: Path) -> dict[str, str]:
    return {u: r["job_id"] for u, r in _state(run)["jobs"].items()}


def test_submitit_local_jobs_give_the_local_launchers_results(
    tmp_path, run_cli, jobs_env, lits6_phantom
):
    """Two replicates (their own split and seed), stage 1 only, 3 steps."""
    common = ["--lits", lits6_phantom, "--configs", "stage1", "--max-steps", "3", "--device", "cpu"]
    common += ["--replicates", "2"]
    code, _, err = run_cli("ablation", *common, "-o", tmp_path / "local")
    assert code == 0, err
    code, out, err = run_cli(
        "ablation", *common, "-o", tmp_path / "jobs", "--launcher", "submitit-local"
    )
    assert code == 0, err
    run = tmp_path / "jobs"
    local = _results(tmp_path / "local")
    assert len(local) == 4 and _results(run) == local
    assert local["train/stage1/done.json"] != local["replicates/1/train/stage1/done.json"]
    state = _state(run)
    assert set(state["jobs"]) == {
        "prepare",
        "train:stage1",
        "score:stage1",
        "rep1:train:stage1",
        "rep1:score:stage1",
        "report",
    }
    assert state["jobs"]["prepare"]["steps"] == ["split", "cache", "rep1:split", "rep1:cache"]
    for unit, record in state["jobs"].items():
        assert record["status"] == "finished" and record["attempt"] == 1, unit
        assert Path(record["stderr"]).is_file() and Path(record["stdout"]).is_file()
        assert Path(record["stderr"]).parent == run / "jobs"
        for step in record["steps"]:
            assert state["steps"][step]["done"] and state["steps"][step]["job"] == record["job_id"]
    assert all(s["done"] for s in state["steps"].values())
    assert "submitted train:stage1 as job" in err and "report.html" in out
    info = json.loads((run / "ablation.json").read_text())
    assert info["launcher"] == "submitit-local" and info["device"] == "cpu"  # the jobs' device
    # a rerun submits nothing and changes nothing
    before = (run / "ablation_state.json").read_text()
    code, _, err = run_cli("ablation", *common, "-o", run, "--launcher", "submitit-local")
    assert code == 0, err
    assert "submitted" not in err and (run / "ablation_state.json").read_text() == before


@pytest.mark.slow
def test_killed_and_preempted_trainings_resume_to_the_same_results(tmp_path, run_cli, jobs_env):
    """Phantom ablation (overlap and leak-free split in the prepare job), two configurations,
    30 steps (epoch 0 is 25): stage 1 is preempted at step 2 of epoch 1 and requeued by
    submitit in the same run; the baseline's job is killed there (SIGKILL, as a node failure)
    and fails; the rerun resubmits only it and what waited on it. Same results as the local
    launcher."""
    common = ["--configs", "baseline", "--max-steps", "30", "--device", "cpu"]
    code, _, err = run_cli("ablation", *common, "-o", tmp_path / "local")
    assert code == 0, err

    run = tmp_path / "jobs"
    marks = tmp_path / "marks"
    marks.mkdir()
    jobs_env.setenv(
        "E2NET_TEST_INTERRUPT",
        f"stage1:1:2:USR2:{marks / 'stage1'};baseline:1:2:KILL:{marks / 'baseline'}",
    )
    args = ("ablation", *common, "-o", run, "--launcher", "submitit-local")
    code, _, err = run_cli(*args)
    assert (marks / "stage1").is_file() and (marks / "baseline").is_file()  # both happened
    state = _state(run)
    jobs = state["jobs"]
    failed = jobs["train:baseline"]
    assert code == 4 and failed["status"] == "failed"  # RunFailed: exit 4 (1 is regress only)
    assert f"log: {failed['stderr']}" in err and Path(failed["stderr"]).is_file()
    assert "not started because of them: score:baseline, report" in err
    # the preempted job was requeued under the same id and finished, its predictions too
    assert jobs["train:stage1"]["status"] == "finished" and jobs["train:stage1"]["attempt"] == 1
    stage1_log = Path(jobs["train:stage1"]["stderr"]).read_text()
    assert "preempted" in stage1_log and "Requeued job" in stage1_log
    assert "requeueing (resumes from the last checkpoint)" in stage1_log  # UnitCall.checkpoint
    assert "resuming stage1 at epoch 1, step 25" in stage1_log
    assert jobs["score:stage1"]["status"] == "finished"
    assert "score:baseline" not in jobs and not state["steps"].get("report")
    checkpoint = run / "train" / "baseline" / "checkpoint_last.pt"
    assert checkpoint.is_file() and not (run / "train" / "baseline" / "done.json").exists()

    first = _job_ids(run)
    code, _, err = run_cli(*args)
    assert code == 0, err
    assert f"resubmitting train:baseline: job {first['train:baseline']} failed" in err
    assert failed["stderr"] in err
    jobs = _state(run)["jobs"]
    for unit in ("prepare", "train:stage1", "score:stage1"):  # finished: not submitted again
        assert jobs[unit]["job_id"] == first[unit] and f"submitted {unit} " not in err
    retried = jobs["train:baseline"]
    assert retried["attempt"] == 2 and retried["earlier"][0]["job_id"] == first["train:baseline"]
    assert "resuming baseline at epoch 1, step 25" in Path(retried["stderr"]).read_text()
    assert _results(run) == _results(tmp_path / "local")
    assert len(_results(run)) == 6


@pytest.mark.slow
def test_slurm_launcher_on_a_stand_in_cluster(tmp_path, run_cli, jobs_env, lits6_phantom):
    """``--launcher slurm`` through submitit's SlurmExecutor with sbatch/srun/sacct played by
    `fake_slurm`: stage 1 trains with DDP over two tasks (gloo on the CPU), is preempted
    (SIGUSR2 -> checkpoint -> scontrol requeue) and resumes; the orchestrator is killed
    while the training runs, and the rerun follows that job instead of resubmitting it."""
    for key, value in fake_slurm.install(tmp_path / "slurm").items():
        jobs_env.setenv(key, value)
    marks = tmp_path / "marks"
    marks.mkdir()
    jobs_env.setenv("E2NET_TEST_INTERRUPT", f"stage1:1:2:USR2:{marks / 'stage1'}")
    run = tmp_path / "run"
    args = [
        "ablation", "--lits", str(lits6_phantom), "--configs", "stage1", "--max-steps", "30",
        "--device", "cpu", "-o", str(run), "--launcher", "slurm", "--slurm-gpus-per-job", "2",
        "--slurm-partition", "gpu", "--slurm-time", "2:00:00", "--slurm-additional",
        "account=lab",
    ]  # fmt: skip
    # the first orchestrator runs as its own process and is killed once training started
    orchestrator = subprocess.Popen(
        [sys.executable, "-m", "e2net_eval", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ['PYTHONPATH']}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while time.time() < deadline:
        jobs = _state(run).get("jobs", {}) if (run / "ablation_state.json").is_file() else {}
        if jobs.get("train:stage1", {}).get("status") == "submitted":
            break
        assert orchestrator.poll() is None, "the orchestrator ended early"
        time.sleep(0.2)
    orchestrator.send_signal(signal.SIGKILL)
    orchestrator.wait()
    train_job = _state(run)["jobs"]["train:stage1"]["job_id"]

    code, out, err = run_cli(*args)
    assert code == 0, err
    assert f"following train:stage1: job {train_job}" in err
    assert "submitted train:stage1" not in err
    state = _state(run)
    record = state["jobs"]["train:stage1"]
    assert record["job_id"] == train_job and record["attempt"] == 1
    assert record["status"] == "finished" and record["tasks"] == 2 and record["gpus"] == 2
    done = json.loads((run / "train" / "stage1" / "done.json").read_text())
    assert done["world_size"] == 2 and done["steps"] == 30
    logs = "".join(p.read_text() for p in (run / "jobs").glob(f"{train_job}_*_log.*"))
    assert "task 1 of 2" in logs and "Requeued job" in logs and "resuming stage1" in logs
    assert "requeueing (resumes from the last checkpoint)" in logs  # UnitCall.checkpoint
    assert (marks / "stage1").is_file()
    script = Path(record["sbatch"]).read_text()
    for line in (
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --ntasks-per-node=2",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=120",
        "#SBATCH --account=lab",
        "#SBATCH --job-name=e2net-run-train-stage1",
    ):
        assert line in script
    summary = json.loads((run / "eval" / "lits_val" / "stage1" / "summary.json").read_text())
    assert summary["n_cases"] == 1 and (run / "report" / "report.html").is_file()
