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
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2net_eval.workflows.launch import submitit as cluster
from tests.helpers.real_slurm import sacct_state, slurm_cluster, squeue  # noqa: F401
from tests.workflows.test_cluster_e2e import _results, _state

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HOOK = HERE / "interrupt_hook"

pytestmark = pytest.mark.slow

#: Stage 1 only, on six phantom cases, 30 steps (epoch 0 is 25): a checkpoint at step 25.
STEPS = "30"
SLURM = ["--launcher", "slurm", "--slurm-gpus-per-job", "1", "--slurm-cpus-per-job", "1"]
SLURM += ["--slurm-time", "30"]


@pytest.fixture(scope="module")
def tiny_lits(tmp_path_factory):
    from e2net_eval.data import write_phantom
    from e2net_eval.data.phantom import PhantomSpec

    root = tmp_path_factory.mktemp("tiny") / "lits"
    write_phantom(root, PhantomSpec("lits", 6, seed=0))
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
def cluster_env(monkeypatch, slurm_cluster):  # noqa: F811
    """Jobs see the interrupt hook; the orchestrator looks at them every second."""
    monkeypatch.setenv("PYTHONPATH", f"{HOOK}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.delenv("E2NET_TEST_INTERRUPT", raising=False)
    monkeypatch.setitem(cluster.POLL_S, "slurm", 1.0)
    return monkeypatch


def _same_as_local(run: Path, local: Path, run_cli, n: int = 2) -> None:
    assert _results(run) == _results(local) and len(_results(run)) == n
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


def _finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    """Wait for an orchestrator to end (killed if it does not: a hang fails the test); its
    stderr."""
    try:
        return proc.communicate(timeout=timeout)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


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


# -- D1: a job SLURM refuses is bad input, found before any work ---------------------------------
@pytest.mark.parametrize(
    "option, words",
    [
        (["--slurm-partition", "nope"], "invalid partition"),
        (["--slurm-mem", "100000G"], "requested node configuration is not available"),
        (
            ["--slurm-gpus-per-job", "4", "--slurm-cpus-per-job", "4"],  # the node has 2
            "requested node configuration is not available",
        ),
    ],
)
def test_a_job_sbatch_refuses_is_an_input_error_before_any_work(
    tmp_path, run_cli, cluster_env, tiny_lits, option, words
):
    run = tmp_path / "run"
    code, out, err = run_cli("ablation", *_common(tiny_lits), "-o", run, *SLURM, *option)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert words in lines[0].lower() and option[0] in lines[0]
    assert not run.exists()  # nothing ran, nothing written


@pytest.fixture(scope="module")
def local_two(tiny_lits, tmp_path_factory):
    """The reference with two configurations (stage 1 and the baseline)."""
    from e2net_eval.cli import main

    run = tmp_path_factory.mktemp("local2") / "run"
    with pytest.raises(SystemExit) as exc:
        main(["ablation", *_two(tiny_lits), "-o", str(run)])
    assert exc.value.code in (0, None)
    return run


def _two(lits: Path) -> list[str]:
    common = _common(lits)
    common[common.index("stage1")] = "baseline"
    return common


def _marker_pid(marker: Path) -> int:
    return int(marker.read_text().split()[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.is_file() and stat.read_text().split()[2] != "Z"


# -- 2 and 6: scontrol requeue of a running training; the orchestrator killed and restarted ----
def test_requeued_training_resumes_and_a_restarted_orchestrator_adopts_it(
    tmp_path, run_cli, cluster_env, tiny_lits, local_run
):
    """Stage 1 pauses at step 2 of epoch 1 (a checkpoint exists from epoch 0); the
    orchestrator is killed, the job requeued with ``scontrol requeue``; a new orchestrator
    follows the same job (not resubmitted), which resumes from its checkpoint."""
    run, marker = tmp_path / "run", tmp_path / "paused"
    cluster_env.setenv("E2NET_TEST_INTERRUPT", f"stage1:1:2:SLEEP:{marker}")
    args = ["ablation", *_common(tiny_lits), "-o", str(run), *SLURM]
    first = _orchestrator(args)
    _wait_for(marker.is_file, "the training to pause")
    job_id = _job(run, "train:stage1")["job_id"]
    first.kill()
    first.wait()
    assert squeue(job_id) == "RUNNING"  # the job outlives its orchestrator
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert f"following train:stage1: job {job_id}" in err and "submitted train:stage1" not in err
    record = _state(run)["jobs"]["train:stage1"]
    assert record["job_id"] == job_id and record["attempt"] == 1
    assert record["status"] == "finished"
    log = Path(record["stderr"]).read_text()
    assert "resuming stage1 at epoch 1, step 25" in log  # from checkpoint_last.pt
    assert not _alive(_marker_pid(marker))
    _same_as_local(run, local_run, run_cli)


# -- 3 and D3: scancel of one training; the failure is recorded once the job is gone -----------
def test_cancelled_job_fails_the_run_once_gone_and_the_rerun_resumes(
    tmp_path, run_cli, cluster_env, tiny_lits, local_two
):
    """The baseline's training is cancelled while it runs (submitit ignores SIGTERM, so its
    process runs on until KillWait): exit 4 naming the job and its log, recorded only when
    the job has left the queue; the rerun resubmits only it and what needs it."""
    run, marker = tmp_path / "run", tmp_path / "paused"
    cluster_env.setenv("E2NET_TEST_INTERRUPT", f"baseline:1:2:SLEEP:{marker}")
    args = ["ablation", *_two(tiny_lits), "-o", str(run), *SLURM]
    first = _orchestrator(args)
    _wait_for(marker.is_file, "the baseline to pause")
    job_id = _job(run, "train:baseline")["job_id"]
    subprocess.run(["scancel", job_id], check=True)
    err = _finish(first)
    pid = _marker_pid(marker)
    assert first.returncode == 4, err
    assert not _alive(pid) and squeue(job_id) == ""  # nothing of it runs any more
    record = _state(run)["jobs"]["train:baseline"]
    assert record["status"] == "failed" and record["job_id"] == job_id
    assert f"train:baseline (job {job_id})" in err and f"log: {record['stderr']}" in err
    assert "CANCELLED" in record["error"]
    finished = {u: r["job_id"] for u, r in _state(run)["jobs"].items() if u != "train:baseline"}
    assert set(finished) == {"prepare", "train:stage1", "score:stage1"}

    code, out, err = run_cli(*args)
    assert code == 0, err
    assert f"resubmitting train:baseline: job {job_id} failed" in err
    jobs = _state(run)["jobs"]
    for unit, old in finished.items():  # finished jobs are not run again
        assert jobs[unit]["job_id"] == old and f"submitted {unit} " not in err
    assert jobs["train:baseline"]["attempt"] == 2
    assert "resuming baseline at epoch 1" in Path(jobs["train:baseline"]["stderr"]).read_text()
    _same_as_local(run, local_two, run_cli, n=4)


# -- 4: a failing job and one killed for memory: exit 4, the cause in one line -----------------
def test_a_failing_job_exits_4_with_its_error_and_sacct_state(
    tmp_path, run_cli, cluster_env, tiny_lits
):
    run, marker = tmp_path / "run", tmp_path / "raised"
    cluster_env.setenv("E2NET_TEST_INTERRUPT", f"stage1:0:2:RAISE:{marker}")
    code, out, err = run_cli("ablation", *_common(tiny_lits), "-o", run, *SLURM)
    assert code == 4, err
    record = _state(run)["jobs"]["train:stage1"]
    line = next(x for x in err.splitlines() if x.startswith("  train:stage1 (job"))
    assert "ValueError: injected failure in stage1" in line
    assert "sacct: FAILED, exit 1:0" in line and f"log: {record['stderr']}" in line


def test_a_job_killed_for_memory_exits_4_saying_so(tmp_path, run_cli, cluster_env, tiny_lits):
    run = tmp_path / "run"
    code, out, err = run_cli(
        "ablation", *_common(tiny_lits), "-o", run, *SLURM, "--slurm-mem", "150M"
    )
    assert code == 4, err
    record = _state(run)["jobs"]["prepare"]
    line = next(x for x in err.splitlines() if x.startswith("  prepare (job"))
    assert "ended without a result" in line and "out of memory" in line
    assert "(--slurm-mem)" in line and f"log: {record['stderr']}" in line


# -- 5: two ablations into one folder at once ----------------------------------------------------
def test_a_second_ablation_into_the_same_folder_is_refused(
    tmp_path, run_cli, cluster_env, tiny_lits, local_run
):
    run, marker = tmp_path / "run", tmp_path / "paused"
    cluster_env.setenv("E2NET_TEST_INTERRUPT", f"stage1:1:2:SLEEP:{marker}")
    args = ["ablation", *_common(tiny_lits), "-o", str(run), *SLURM]
    first = _orchestrator(args)
    _wait_for(marker.is_file, "the first run's training")
    code, out, err = run_cli(*args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(run) in err, err
    job_id = _job(run, "train:stage1")["job_id"]
    subprocess.run(["scontrol", "requeue", job_id], check=True)  # the first run goes on
    err = _finish(first)
    assert first.returncode == 0, err
    _same_as_local(run, local_run, run_cli)


# -- D2: without accounting (sacct fails), a cancelled job is still seen to end -----------------
def test_without_accounting_a_cancelled_job_still_ends_the_run(
    tmp_path, run_cli, cluster_env, tiny_lits, local_run
):
    """`sacct` as on a cluster without accounting (a stand-in on PATH that fails); the
    orchestrator sees the end through squeue, says once why the cause is unknown, and a
    ``--launcher local`` rerun completes the run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sacct = bin_dir / "sacct"
    sacct.write_text(
        "#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' >&2\nexit 1\n"
    )
    sacct.chmod(0o755)
    cluster_env.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    run, marker = tmp_path / "run", tmp_path / "paused"
    cluster_env.setenv("E2NET_TEST_INTERRUPT", f"stage1:1:2:SLEEP:{marker}")
    args = ["ablation", *_common(tiny_lits), "-o", str(run)]
    first = _orchestrator([*args, *SLURM])
    _wait_for(marker.is_file, "the training to pause")
    job_id = _job(run, "train:stage1")["job_id"]
    subprocess.run(["scancel", job_id], check=True)
    err = _finish(first, timeout=300)  # before the fix: never returned
    assert first.returncode == 4, err
    assert "accounting storage is disabled" in _state(run)["jobs"]["train:stage1"]["error"]
    assert err.count("ended jobs are seen through squeue") == 1  # said once, not every poll
    assert "Bypassing sacct error" not in err  # submitit's watcher is not asked
    code, out, err = run_cli(*args)  # the local launcher is not refused: the job is gone
    assert code == 0, err
    _same_as_local(run, local_run, run_cli)


# -- D4: a time limit too short for one checkpoint fails fast ------------------------------------
def test_a_time_limit_too_short_for_a_checkpoint_fails_fast(
    tmp_path, run_cli, cluster_env, tiny_lits
):
    run = tmp_path / "run"
    cluster_env.setenv("E2NET_TEST_INTERRUPT", f"stage1:0:2:HANG:{tmp_path / 'never'}")
    slurm = [*SLURM, "--slurm-time", "1"]
    code, out, err = run_cli("ablation", *_common(tiny_lits), "-o", run, *slurm)
    assert code == 4, err
    # the training, or already the data preparation on a loaded machine, never gets there
    failed = {u: r for u, r in _state(run)["jobs"].items() if r["status"] == "failed"}
    assert len(failed) == 1, failed
    ((unit, record),) = failed.items()
    assert unit in ("prepare", "train:stage1")
    assert "ended 2 attempts in a row before it saved anything new" in record["error"]
    assert "--slurm-time" in record["error"]
    requeues = Path(record["stderr"]).read_text().count("Requeued job")
    assert requeues == cluster.MAX_STALLS - 1  # not the 20 requeues submitit allows


# -- D3: a rerun never resubmits beside a job SLURM still runs ------------------------------------
def test_a_rerun_follows_a_job_recorded_failed_that_still_runs(
    tmp_path, run_cli, cluster_env, tiny_lits, local_run
):
    """The state file says the training failed (as an orchestrator that believed sacct's
    CANCELLED while the job ran on until KillWait wrote it), but SLURM still has the job:
    the rerun follows that job instead of training the configuration a second time beside
    it."""
    run, marker = tmp_path / "run", tmp_path / "paused"
    cluster_env.setenv("E2NET_TEST_INTERRUPT", f"stage1:1:2:SLEEP:{marker}")
    args = ["ablation", *_common(tiny_lits), "-o", str(run), *SLURM]
    first = _orchestrator(args)
    _wait_for(marker.is_file, "the training to pause")
    first.kill()
    first.wait()
    state = _state(run)
    record = state["jobs"]["train:stage1"]
    job_id = record["job_id"]
    record.update(status="failed", error="ended without a result (state CANCELLED)")
    (run / "ablation_state.json").write_text(json.dumps(state))
    subprocess.run(["scontrol", "requeue", job_id], check=True)  # it goes on, then ends
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert f"following train:stage1: job {job_id} was recorded failed" in err
    assert "submitted train:stage1" not in err
    record = _state(run)["jobs"]["train:stage1"]
    assert record["job_id"] == job_id and record["status"] == "finished"
    _same_as_local(run, local_run, run_cli)
