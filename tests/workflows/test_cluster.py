"""The cluster launcher without running jobs: units of the graph, the sbatch script of every
option, option parsing, refusals, and the pool's limits and failure handling.

The end-to-end runs (submitit's local executor, a stand-in SLURM) are in
`test_cluster_e2e.py`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from e2net_eval.errors import InputError
from e2net_eval.workflows import ablation as wf
from e2net_eval.workflows.ablation import run as ab_run
from e2net_eval.workflows.ablation.graph import job_graph, step_kind
from e2net_eval.workflows.ablation.steps import StepContext, execute_step
from e2net_eval.workflows.jobs import Job, JobsFailed, run_jobs
from e2net_eval.workflows.launch import local, slurm
from e2net_eval.workflows.launch import submitit as cluster
from e2net_eval.workflows.launch.slurm import SlurmOptions
from e2net_eval.workflows.launch.units import group_units, unit_kind
from reference_models import get_profile, list_models
from tests.helpers import fake_slurm

REPO = Path(__file__).resolve().parents[2]


# -- units -----------------------------------------------------------------------------------
def test_units_of_the_ablation_graph(tmp_path):
    jobs = job_graph(wf.AblationArgs(out=tmp_path, configs=list_models()))
    units, members = group_units(jobs)
    names = [u.name for u in units]
    stage2 = list_models()[1:]
    assert names == [
        "prepare",
        *[f"train:{c}" for c in list_models()],
        *[f"score:{c}" for c in list_models()],
        "report",
    ]
    assert members["prepare"] == ["data:lits", "data:ircadb", "overlap", "split", "cache"]
    for c in list_models():
        assert members[f"train:{c}"] == [f"train:{c}"]
        assert sorted(members[f"score:{c}"]) == sorted(
            f"{k}:{s}:{c}" for k in ("predict", "evaluate") for s in ("lits_val", "ircadb")
        )
    deps = {u.name: set(u.deps) for u in units}
    assert deps["prepare"] == set() and deps["train:dist"] == {"prepare"}
    assert deps["score:stage1"] == {"train:stage1"}
    for c in stage2:  # stage-2 predictions run inside stage 1's
        assert deps[f"score:{c}"] == {f"train:{c}", "score:stage1"}
    assert deps["report"] == {f"score:{c}" for c in list_models()}
    # every step in exactly one unit
    assert sorted(s for m in members.values() for s in m) == sorted(j.name for j in jobs)
    assert [unit_kind(members[n]) for n in ("prepare", "train:edge", "score:edge")] == [
        "cpu",
        "train",
        "score",
    ]


def test_units_of_replicates(tmp_path):
    """Replicate r's steps (``rep<r>:train:dist``, ...) form their own training and score
    jobs; its split and cache join the one prepare job; the report waits for all."""
    args = wf.AblationArgs(out=tmp_path, configs=["stage1", "dist"], replicates=2)
    jobs = job_graph(args)
    units, members = group_units(jobs, step_kind)
    deps = {u.name: set(u.deps) for u in units}
    assert members["prepare"] == [
        "data:lits", "data:ircadb", "overlap", "split", "cache", "rep1:split", "rep1:cache"
    ]  # fmt: skip
    assert members["rep1:train:dist"] == ["rep1:train:dist"]
    assert sorted(members["rep1:score:dist"]) == sorted(
        f"rep1:{k}:{s}:dist" for k in ("predict", "evaluate") for s in ("lits_val", "ircadb")
    )
    assert deps["rep1:score:dist"] == {"rep1:train:dist", "rep1:score:stage1"}
    assert deps["score:dist"] == {"train:dist", "score:stage1"}
    assert deps["report"] == {"score:stage1", "score:dist", "rep1:score:stage1", "rep1:score:dist"}
    assert sorted(s for m in members.values() for s in m) == sorted(j.name for j in jobs)
    assert unit_kind(members["rep1:train:dist"], step_kind) == "train"
    assert unit_kind(members["rep1:score:dist"], step_kind) == "score"


def test_units_come_from_kinds_and_the_graph_not_from_names():
    """Steps named otherwise (replicates, say) still land in the right units."""
    jobs = [
        Job("data:lits"),
        Job("split:r1", ("data:lits",)),
        Job("cache:r1", ("split:r1",)),
        Job("train:r1:stage1", ("cache:r1",)),
        Job("train:r1:dist", ("cache:r1",)),
        Job("predict:r1:lits_val:stage1", ("train:r1:stage1",)),
        Job("predict:r1:lits_val:dist", ("train:r1:dist", "predict:r1:lits_val:stage1")),
        Job("evaluate:r1:lits_val:dist", ("predict:r1:lits_val:dist",)),
        Job("summarise", ("evaluate:r1:lits_val:dist",)),
    ]
    units, members = group_units(jobs)
    assert members == {
        "prepare": ["data:lits", "split:r1", "cache:r1"],
        "train:r1:stage1": ["train:r1:stage1"],
        "train:r1:dist": ["train:r1:dist"],
        "score:r1:stage1": ["predict:r1:lits_val:stage1"],
        "score:r1:dist": ["predict:r1:lits_val:dist", "evaluate:r1:lits_val:dist"],
        "summarise": ["summarise"],
    }
    deps = {u.name: u.deps for u in units}
    assert deps["score:r1:dist"] == ("train:r1:dist", "score:r1:stage1")
    assert deps["summarise"] == ("score:r1:dist",)


# -- options ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, minutes",
    [
        ("90", 90),
        ("30:30", 31),
        ("2:00:00", 120),
        ("1-0", 1440),
        ("1-12:30", 2190),
        ("2-00:00:01", 2881),
    ],
)
def test_slurm_time_formats(text, minutes):
    assert slurm.parse_time(text) == minutes


@pytest.mark.parametrize("text", ["", "abc", "1h", "0", "0:00:00", "1-2-3"])
def test_bad_slurm_time(text):
    with pytest.raises(InputError, match="--slurm-time"):
        slurm.parse_time(text)


def test_slurm_mem_and_additional():
    assert slurm.parse_mem("64G") == "64G" and slurm.parse_mem("64gb") == "64G"
    assert slurm.parse_mem("500") == "500M" and slurm.parse_mem("2T") == "2T"
    with pytest.raises(InputError, match="--slurm-mem"):
        slurm.parse_mem("lots")
    assert slurm.parse_additional(["account=lab", "qos=high", "exclusive"]) == {
        "account": "lab",
        "qos": "high",
        "exclusive": True,
    }
    for bad, why in [
        (["=x"], "KEY=VALUE"),
        (["time=10"], "--slurm-time"),
        (["gpus_per_node=2"], "--slurm-gpus-per-job"),
        (["output=x"], "RUN/jobs"),
        (["qos=a", "qos=b"], "twice"),
    ]:
        with pytest.raises(InputError, match=re.escape(why)):
            slurm.parse_additional(bad)
    with pytest.raises(InputError, match="split evenly"):
        SlurmOptions(gpus_per_job=4, cpus_per_job=10)


def _sbatch(opts: SlurmOptions, kind: str, tmp_path: Path, monkeypatch, profile="paper") -> dict:
    """The #SBATCH lines submitit writes for a unit of `kind` (its real SlurmExecutor, with
    a stand-in srun on PATH; nothing is submitted)."""
    for key, value in fake_slurm.install(tmp_path / "slurm").items():
        monkeypatch.setenv(key, value)
    ex = cluster.make_executor("slurm", opts, tmp_path / "jobs", kind, get_profile(profile))
    ex.update_parameters(job_name="e2net-run-x")
    text = ex._make_submission_file_text(ex._submitit_command_str, "uid")
    lines = {}
    for line in text.splitlines():
        m = re.match(r"#SBATCH --([\w-]+)(?:=(.*))?$", line)
        if m:
            lines[m.group(1)] = m.group(2) if m.group(2) is not None else True
    lines["_text"] = text
    return lines


def test_sbatch_lines_of_every_option(tmp_path, monkeypatch):
    opts = SlurmOptions(
        partition="gpu-long",
        gpus_per_job=4,
        cpus_per_job=32,
        time_min=slurm.parse_time("2-00:00:00"),
        mem=slurm.parse_mem("120G"),
        array_parallelism=3,
        additional=slurm.parse_additional(["account=lab", "qos=high", "exclusive"]),
    )
    train = _sbatch(opts, "train", tmp_path, monkeypatch)
    assert train["partition"] == "gpu-long"
    assert train["gpus-per-node"] == "4" and train["ntasks-per-node"] == "4"  # DDP: a task/GPU
    assert train["nodes"] == "1"
    assert train["cpus-per-task"] == "8"  # 32 CPUs shared by 4 tasks
    assert train["time"] == "2880"
    assert train["mem"] == "120G"
    assert train["account"] == "lab" and train["qos"] == "high" and train["exclusive"] is True
    assert train["signal"] == "USR2@90"  # submitit's preemption warning -> requeue
    assert train["job-name"] == "e2net-run-x"
    assert train["output"] == str(tmp_path / "jobs" / "%j_0_log.out")
    assert train["error"] == str(tmp_path / "jobs" / "%j_0_log.err")
    assert "array" not in train  # one job per unit; --slurm-array-parallelism caps them
    # the jobs run the orchestrator's code
    assert f"export PYTHONPATH={REPO}" in train["_text"]

    score = _sbatch(opts, "score", tmp_path, monkeypatch)
    assert score["gpus-per-node"] == "1" and score["ntasks-per-node"] == "1"
    assert score["cpus-per-task"] == "8" and score["partition"] == "gpu-long"
    assert score["time"] == "2880" and score["mem"] == "120G" and score["account"] == "lab"

    prepare = _sbatch(opts, "cpu", tmp_path, monkeypatch)
    assert "gpus-per-node" not in prepare and prepare["ntasks-per-node"] == "1"

    # defaults: one GPU, the profile's loader workers + 2 CPUs, a day, the cluster's memory
    plain = _sbatch(SlurmOptions(), "train", tmp_path, monkeypatch)
    assert plain["gpus-per-node"] == "1" and plain["ntasks-per-node"] == "1"
    assert plain["cpus-per-task"] == "10" and plain["time"] == "1440"
    assert not {"partition", "mem", "account"} & set(plain)
    small = _sbatch(SlurmOptions(gpus_per_job=0), "train", tmp_path, monkeypatch, "small")
    assert "gpus-per-node" not in small and small["cpus-per-task"] == "2"


def test_local_executor_gets_the_same_tasks_and_time():
    opts = SlurmOptions(gpus_per_job=2, time_min=90)
    assert cluster.local_parameters(opts, "train") == {
        "timeout_min": 90,
        "tasks_per_node": 2,
        "gpus_per_node": 2,
    }
    assert cluster.local_parameters(opts, "score")["tasks_per_node"] == 1


def test_every_launcher_name_gives_its_launcher():
    """The launcher names live in `launch.base`; the CLI offers exactly those."""
    from e2net_eval.commands.ablation import ablation_cmd
    from e2net_eval.workflows.launch.choose import LAUNCHERS, make_launcher

    profile = get_profile("small")
    launchers = {name: make_launcher(name, profile) for name in LAUNCHERS}
    assert {n: type(x).__name__ for n, x in launchers.items()} == {
        "local": "LocalLauncher",
        "slurm": "SubmititLauncher",
        "submitit-local": "SubmititLauncher",
    }
    assert [x.name for x in launchers.values()] == list(LAUNCHERS)
    assert [x.remote for x in launchers.values()] == [False, True, True]
    assert launchers["submitit-local"].executor == "local"
    choice = next(p for p in ablation_cmd.params if p.name == "launcher").type
    assert list(choice.choices) == list(LAUNCHERS)
    for kwargs, why in [
        ({"name": "ssh"}, "unknown launcher"),
        ({"name": "local", "slurm": SlurmOptions()}, "--slurm-* options need --launcher slurm"),
        ({"name": "slurm", "workers": 2}, "--workers is for --launcher local"),
        ({"name": "local", "workers": 0}, "--workers must be at least 1"),
    ]:
        with pytest.raises(InputError, match=re.escape(why)):
            make_launcher(profile=profile, **kwargs)
    with pytest.raises(InputError, match="does not split evenly"):
        make_launcher("submitit-local", profile, slurm=SlurmOptions(gpus_per_job=3)).check()


def test_cli_refuses_mixed_launcher_options(tmp_path, run_cli, monkeypatch):
    monkeypatch.setattr(local, "run_jobs", _never)
    code, _, err = run_cli("ablation", "-o", tmp_path / "a", "--slurm-partition", "gpu")
    assert code == 2 and "--slurm-partition" in err and "--launcher slurm" in err
    code, _, err = run_cli(
        "ablation", "-o", tmp_path / "b", "--launcher", "slurm", "--workers", "2"
    )
    assert code == 2 and "--workers" in err
    code, _, err = run_cli(
        "ablation", "-o", tmp_path / "c", "--launcher", "slurm", "--slurm-time", "forever"
    )
    assert code == 2 and "--slurm-time" in err
    code, _, err = run_cli(
        "ablation", "-o", tmp_path / "d", "--launcher", "slurm", "--slurm-additional", "mem=1G"
    )
    assert code == 2 and "--slurm-mem" in err
    assert not any((tmp_path / n).exists() for n in "abcd")


def test_slurm_launcher_without_srun_is_an_input_error(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, _, err = run_cli("ablation", "-o", tmp_path / "run", "--launcher", "slurm")
    assert code == 2 and "srun" in err


def _never(*args, **kwargs):
    raise AssertionError("no step may run")


def test_local_launcher_refuses_while_cluster_jobs_run(tmp_path, run_cli, monkeypatch):
    """A local rerun must not train a configuration a cluster job may be training."""
    from e2net_eval.util.outdir import write_manifest
    from e2net_eval.workflows.state import StateBook

    for key, value in fake_slurm.install(tmp_path / "slurm").items():
        monkeypatch.setenv(key, value)
    queue = tmp_path / "slurm" / "state" / "4242.state"  # what squeue lists
    queue.write_text("RUNNING")
    monkeypatch.setattr(local, "run_jobs", _never)
    run = tmp_path / "run"
    run.mkdir()
    write_manifest(run, "ablation-run", files=False)  # as the ablation marks its folder
    book = StateBook(run, wf.AblationArgs(out=run, configs=list_models()).fingerprint())
    book.record_job("train:dist", {"job_id": "4242", "executor": "slurm", "status": "submitted"})
    code, _, err = run_cli("ablation", "-o", run)
    assert code == 2 and "train:dist (job 4242, slurm)" in err
    # recorded failed while SLURM still runs it (a cancelled job until KillWait): refused too
    book.record_job("train:dist", {"job_id": "4242", "executor": "slurm", "status": "failed"})
    code, _, err = run_cli("ablation", "-o", run)
    assert code == 2 and "train:dist (job 4242, slurm)" in err
    monkeypatch.setattr(local, "run_jobs", lambda *a, **k: None)
    monkeypatch.setattr(ab_run, "write_info", lambda ctx, book, launcher: None)
    queue.write_text("CANCELLED")  # gone from the queue
    code, _, err = run_cli("ablation", "-o", run)
    assert code == 0, err  # a failed cluster job is not running: the local rerun goes on
    # recorded in flight but gone from the queue (no accounting told its end): goes on too
    book.record_job("train:dist", {"job_id": "4242", "executor": "slurm", "status": "submitted"})
    code, _, err = run_cli("ablation", "-o", run)
    assert code == 0, err


# -- the pool: limits, failures, outcomes -----------------------------------------------------
class FakeJob:
    """Ends after `polls` looks; `error` makes it end without a result."""

    def __init__(self, name, polls, log, error=None):
        self.job_id, self.polls, self.error, self.name = f"j-{name}", polls, error, name
        self.paths = type("P", (), {"result_pickle": Path("/nonexistent"), "stderr": log})()
        log.running.append(name)
        log.peak = max(log.peak, len(log.running))
        self.log = log

    @property
    def state(self):
        return "RUNNING" if self.polls > 0 else "COMPLETED"

    def done(self):
        self.polls -= 1
        if self.polls < 0:
            if self.name in self.log.running:
                self.log.running.remove(self.name)
            return True
        return False

    def results(self):
        if self.error:
            raise RuntimeError(self.error)
        return [{self.name: {"outputs": self.name, "seconds": 1.0}}]


class Log:
    def __init__(self):
        self.running, self.peak, self.states = [], 0, []


def _pool(log, slots, fail=()):
    def submit(name):
        return FakeJob(name, polls=2, log=log, error="boom" if name in fail else None)

    return cluster.SubmititPool(
        submit,
        slots=slots,
        poll_s=0.0,
        on_state=lambda name, job, state: log.states.append((name, state)),
        cancel_on_stop=False,
    )


GRAPH = [
    Job("p"),
    *[Job(f"t{i}", ("p",)) for i in range(5)],
    Job("r", tuple(f"t{i}" for i in range(5))),
]


def test_array_parallelism_caps_the_jobs_in_flight():
    for slots, peak in [(2, 2), (None, 5)]:
        log = Log()
        done: list[str] = []
        run_jobs(GRAPH, _pool(log, slots), on_done=lambda n, out, s, d=done: d.append(n))
        assert log.peak == peak and sorted(done) == sorted(j.name for j in GRAPH)
        assert ("t0", "RUNNING") in log.states


def test_a_failed_job_blocks_only_what_needs_it():
    log = Log()
    done, failed = [], []
    graph = [Job("p"), Job("a", ("p",)), Job("b", ("p",)), Job("sa", ("a",)), Job("sb", ("b",))]
    with pytest.raises(JobsFailed) as info:
        run_jobs(
            graph,
            pool=_pool(log, None, fail={"a"}),
            on_done=lambda n, out, s: done.append(n),
            on_fail=lambda n, exc: failed.append((n, str(exc))),
        )
    assert sorted(done) == ["b", "p", "sb"] and failed[0][0] == "a" and "boom" in failed[0][1]
    assert info.value.blocked == ["sa"] and list(info.value.failed) == ["a"]


def test_without_on_fail_the_first_failure_stops_the_run():
    log = Log()
    graph = [Job("p"), Job("a", ("p",)), Job("b", ("p",))]
    with pytest.raises(cluster.ClusterJobError, match="boom"):
        run_jobs(graph, _pool(log, 1, fail={"a"}))


def test_error_line_names_the_exception_of_a_failed_job():
    trace = (
        "Job (task=0) failed during processing with trace:\n----------------------\n"
        "Traceback (most recent call last):\n  File x\nValueError: bad case 3\n"
        "----------------------\nYou can check full logs with ..."
    )
    assert cluster.error_line(RuntimeError(trace)) == "ValueError: bad case 3"
    lost = "Job 12 (task: 0) with path /x\nhas not produced any output (state: NODE_FAIL)\n..."
    assert cluster.error_line(RuntimeError(lost)) == "ended without a result (state NODE_FAIL)"


def test_a_job_running_overlap_and_split_together_excludes_the_overlap(tmp_path, monkeypatch):
    """The prepare job runs overlap then split before the orchestrator has written the
    overlap into the state file: split must still leave the 3DIRCADb patients out."""
    import e2net_eval.data

    seen = {}

    class Dataset:
        def __init__(self, root):
            self.root = root

        def case_ids(self):
            return [str(i) for i in range(10)]

    def make_split(case_ids, seed, *, exclude=(), n_val=None, strata=None):
        seen["exclude"] = list(exclude)
        pool = [c for c in case_ids if c not in exclude]
        return {"seed": seed, "train": pool[2:], "validation": pool[:2], "exclude": list(exclude)}

    monkeypatch.setattr(e2net_eval.data, "open_dataset", Dataset, raising=False)
    monkeypatch.setattr(
        e2net_eval.data,
        "find_overlap",
        lambda a, b: [{"lits": "3", "ircadb": "3Dircadb1.1", "score": 1.0}],
        raising=False,
    )
    monkeypatch.setattr(e2net_eval.data, "make_split", make_split, raising=False)
    ctx = StepContext.for_run(wf.AblationArgs(out=tmp_path), tmp_path)
    for step in ("overlap", "split"):  # one process, no state file (a cluster job)
        execute_step(ctx, step)
    assert seen["exclude"] == ["3"]
    assert not (tmp_path / "ablation_state.json").exists()


def test_a_failed_job_is_reported_by_its_exception_and_log(tmp_path):
    """A real job (submitit's local executor) that raises: the error names the exception
    line and the log file, which holds the traceback."""
    import time

    import submitit

    job = submitit.LocalExecutor(tmp_path).submit(int, "not a number")
    deadline = time.time() + 120
    while not cluster.job_ended(job) and time.time() < deadline:
        time.sleep(0.2)
    end = cluster.outcome("unit", job)
    assert isinstance(end.error, cluster.ClusterJobError)
    assert end.error.message == "ValueError: invalid literal for int() with base 10: 'not a number'"
    assert end.error.log_path == str(job.paths.stderr)
    assert "Traceback" in Path(end.error.log_path).read_text()


def _step(spec, name):
    spec.append(name)
    return name.upper()


def test_checkpoint_requeues_the_unit_without_its_finished_steps(tmp_path, monkeypatch):
    """What submitit does at a time limit (`job_environment._checkpoint`): the unit's
    `checkpoint()` gives the call it pickles for the requeued job; that call skips the steps
    the job had finished and runs the rest (a training step resumes from its checkpoint)."""
    from submitit.core import job_environment, utils

    monkeypatch.setattr(cluster, "join_job_tasks", lambda: None)  # not inside a job here
    call = cluster.UnitCall(_step, [], "score:x", ["predict:a:x", "evaluate:a:x"], None)
    call.results["predict:a:x"] = {"outputs": "PREDICT:A:X", "seconds": 1.0}  # done before
    delayed = utils.DelayedSubmission(call)
    delayed.set_timeout(60, 3)
    pickle = tmp_path / "submitted.pkl"
    assert job_environment._checkpoint(delayed, pickle, countdown=2) == ""  # "" = requeue
    again = utils.DelayedSubmission.load(pickle)
    assert isinstance(again.function, cluster.UnitCall) and again._timeout_countdown == 2
    results = again.result()
    assert again.function.spec == ["evaluate:a:x"]  # only the unfinished step ran
    assert list(results) == ["predict:a:x", "evaluate:a:x"]
    assert results["evaluate:a:x"]["outputs"] == "EVALUATE:A:X"
