"""The ablation's split seed vs training seed (W03), the overlap read by a step that runs in
another process than the overlap step (W06, W07), and no 3DIRCADb patient reaching
training, checked on what the trainer reads, not on metrics (a leak that only makes the
numbers better passes any gate)."""

from __future__ import annotations

import json

from e2net_eval.data.split import resolve_split
from e2net_eval.rundir import STATE_JSON
from e2net_eval.workflows import ablation as wf
from e2net_eval.workflows.ablation.steps import StepContext
from tests.workflows.test_ablation import OVERLAP, FakeDataset, Recorder, install_fakes


class LogRecorder(Recorder):
    """Keeps the keyword arguments of every call (replicates call a stage more than once)."""

    def __init__(self):
        super().__init__()
        self.log: list[tuple[str, dict]] = []

    def _hit(self, key, kwargs):
        self.log.append((key[0], kwargs))
        super()._hit(key, kwargs)

    def logged(self, stage: str) -> list[dict]:
        return [kw for s, kw in self.log if s == stage]


def test_split_seed_and_training_seed_go_where_they_belong(monkeypatch, tmp_path, run_cli):
    """W03: one replicate with split seed 5 and training seed 9: the split is drawn with 5,
    every training with 9 (and given split seed 5 for its own checks)."""
    rec = install_fakes(LogRecorder(), monkeypatch)
    run = tmp_path / "run"
    code, _, err = run_cli(
        "ablation", "-o", run, "--configs", "baseline", "--split-seeds", "5", "--seeds", "9"
    )
    assert code == 0, err
    assert [kw["seed"] for kw in rec.logged("make_split")] == [5]
    trains = rec.logged("train")
    assert len(trains) == 2 and all(kw["seed"] == 9 and kw["split_seed"] == 5 for kw in trains)
    assert [kw["split_seed"] for kw in rec.logged("prepare_run")] == [5]


def _fresh_context(tmp_path, monkeypatch, state_steps: dict):
    """A context as a worker process has it: no outputs of its own, the state file on disk
    written by the parent (the overlap step ran elsewhere). Real `make_split`."""
    monkeypatch.setattr("e2net_eval.data.open_dataset", FakeDataset)
    run = tmp_path / "run"
    run.mkdir()
    (run / STATE_JSON).write_text(json.dumps({"args": {}, "steps": state_steps}))
    args = wf.AblationArgs(out=run, configs=["baseline"], lits=str(tmp_path / "lits"))
    ctx = StepContext(args, run, tmp_path / "lits", tmp_path / "ircadb")
    assert ctx.outputs == {}
    return ctx, run


def test_a_split_in_another_process_excludes_the_overlap_from_the_state_file(tmp_path, monkeypatch):
    """W06/W07: the overlap comes from the state file's finished `overlap` step."""
    matches = [{"lits": k, "ircadb": v, "score": 1.0} for k, v in OVERLAP.items()]
    steps = {"overlap": {"done": True, "outputs": matches, "seconds": 1.0, "device": "cpu"}}
    ctx, run = _fresh_context(tmp_path, monkeypatch, steps)
    ctx.make_split(ctx.replicate(0))
    split = json.loads((run / "split.json").read_text())
    assert split["exclude"] == ["2", "5", "9"]
    assert not (set(split["train"]) | set(split["validation"])) & {"2", "5", "9"}
    assert len(split["train"]) + len(split["validation"]) == 12 - 3


def test_an_unfinished_overlap_step_excludes_nothing(tmp_path, monkeypatch):
    matches = [{"lits": "2", "ircadb": "3Dircadb1.1", "score": 1.0}]
    steps = {"overlap": {"done": False, "outputs": matches}}
    ctx, run = _fresh_context(tmp_path, monkeypatch, steps)
    assert ctx.overlap() == []


def test_no_3dircadb_patient_reaches_training(monkeypatch, tmp_path, run_cli):
    """The split file every training step is given, read the way the trainer reads it
    (`data.split.resolve_split`), has none of the 3DIRCADb patients among its training or
    validation cases, in every replicate."""
    rec = install_fakes(LogRecorder(), monkeypatch)
    # the real split: the leak-free exclusion is the data layer's, not the fake's
    from e2net_eval.data import split as real_split

    monkeypatch.setattr("e2net_eval.data.make_split", real_split.make_split)
    run = tmp_path / "run"
    for name in ("lits", "ircadb"):  # user data (the fake dataset's 12 + 3 cases)
        (tmp_path / name).mkdir()
    code, _, err = run_cli(
        "ablation",
        *("--lits", tmp_path / "lits", "--ircadb", tmp_path / "ircadb", "-o", run),
        *("--configs", "baseline", "--replicates", "2"),
    )
    assert code == 0, err
    trains = rec.logged("train")
    assert len({str(kw["split"]) for kw in trains}) == 2
    all_ids = FakeDataset(tmp_path / "lits").case_ids()
    for kw in trains:
        train, val = resolve_split(tmp_path / "t", all_ids, kw["split"], seed=0, write=False)
        assert not (set(train) | set(val)) & set(OVERLAP), kw["split"]
        assert len(train) + len(val) == len(all_ids) - len(OVERLAP)
