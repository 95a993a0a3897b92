"""`ablation --replicates K`: the job graph per replicate, one run folder, the default run
untouched, extending a run with more replicates, and the report's spread and wins.

The stages are the recording fakes of test_ablation.py (training, inference and metrics
replaced); the fake evaluation gives each (replicate, configuration) its own Dice, so the
report's numbers over replicates can be checked against numbers computed here.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sstats

from e2net_eval.errors import InputError
from e2net_eval.workflows import ablation as wf
from e2net_eval.workflows.ablation.graph import Step, finished_steps, job_graph
from e2net_eval.workflows.jobs import Job
from reference_models import get_model, list_models, stage1_name
from tests.helpers.report_fakes import fake_summary, write_summary
from tests.workflows.test_ablation import FakeDataset, Recorder, install_fakes

#: Dice per case of every validation case, by replicate and configuration: (liver, tumour).
DICE = {
    0: {"stage1": (0.90, None), "baseline": (0.95, 0.60), "edge": (0.96, 0.65)},
    1: {"stage1": (0.90, None), "baseline": (0.95, 0.70), "edge": (0.96, 0.68)},
    2: {"stage1": (0.91, None), "baseline": (0.95, 0.65), "edge": (0.94, 0.75)},
}


def _replicate_of(path: Path) -> int:
    parts = Path(path).parts
    return int(parts[parts.index("replicates") + 1]) if "replicates" in parts else 0


class ReplicateRecorder(Recorder):
    """The fakes of test_ablation, with an evaluation whose Dice depends on the replicate
    (read from the prediction folder's place in the run) and the configuration; `log`
    keeps every call's arguments (`kwargs` keeps the last of each key)."""

    def __init__(self):
        super().__init__()
        self.log: list[tuple[tuple[str, object], dict]] = []

    def _hit(self, key, kwargs):
        self.log.append((key, kwargs))
        super()._hit(key, kwargs)

    def train(self, config, data_root, run_dir, **kw):
        self._hit(("train", config), {"data_root": data_root, "run_dir": run_dir, **kw})
        (Path(run_dir) / config).mkdir(parents=True, exist_ok=True)
        return {"steps": kw.get("max_steps"), "reason": "max_steps"}

    def reset(self) -> None:
        self.calls.clear()
        self.log.clear()

    def logged(self, stage: str) -> list[dict]:
        return [kw for (s, _), kw in self.log if s == stage]

    def evaluate(self, pred_dir, ref_root, out_dir, *, case_ids=None, protocol=None, **kw):
        self._hit(
            ("evaluate", (_replicate_of(pred_dir), Path(ref_root).name, Path(pred_dir).name)),
            {"case_ids": case_ids, "protocol": protocol},
        )
        ids = case_ids if case_ids is not None else FakeDataset(ref_root).case_ids()
        liver, tumour = DICE[_replicate_of(pred_dir)][Path(pred_dir).name]
        summary = fake_summary([liver] * len(ids), [0.0 if tumour is None else tumour] * len(ids))
        for row, cid in zip(summary["metric_per_case"], ids, strict=True):
            row["case"] = cid
        summary["meta"].update(kw.get("extra_meta") or {})  # the ablation's provenance
        write_summary(Path(out_dir) / "summary.json", summary)
        return summary


@pytest.fixture
def rec(monkeypatch):
    return install_fakes(ReplicateRecorder(), monkeypatch)


# -- the plan -----------------------------------------------------------------------------
def _plan_before_replicates(phantom: bool, ircadb: bool) -> list[tuple[str, tuple[str, ...]]]:
    """The default plan as it was before replicates existed (names and dependencies),
    written out step by step: a run made then must resume unchanged."""
    configs, stage1 = list_models(), stage1_name()
    plan: list[tuple[str, tuple[str, ...]]] = []
    made: tuple[str, ...] = ()
    if phantom:
        plan += [("data:lits", ()), ("data:ircadb", ())]
        made = ("data:lits", "data:ircadb")
    if ircadb:
        plan.append(("overlap", made))
    plan.append(("split", ("overlap",) if ircadb else made))
    plan.append(("cache", ("split",)))
    plan += [(f"train:{c}", ("cache",)) for c in configs]
    sets = ["lits_val", "ircadb"] if ircadb else ["lits_val"]
    for s in sets:
        for c in configs:
            deps = (f"train:{c}",) + (() if c == stage1 else (f"predict:{s}:{stage1}",))
            plan.append((f"predict:{s}:{c}", deps))
    evaluations = tuple(f"evaluate:{s}:{c}" for s in sets for c in configs)
    plan += [(e, (e.replace("evaluate:", "predict:", 1),)) for e in evaluations]
    plan.append(("report", evaluations))
    return plan


def test_default_plan_is_the_plan_before_replicates(tmp_path):
    lits = tmp_path / "lits"
    for args, phantom, ircadb in [
        (wf.AblationArgs(out=tmp_path), True, True),
        (wf.AblationArgs(out=tmp_path, lits=lits, ircadb=tmp_path / "ircadb"), False, True),
        (wf.AblationArgs(out=tmp_path, lits=lits), False, False),
        (wf.AblationArgs(out=tmp_path, replicates=1, split_seeds=[0], train_seeds=[0]), True, True),
    ]:
        got = [(j.name, j.deps) for j in job_graph(args)]
        assert got == _plan_before_replicates(phantom, ircadb)


def test_default_fingerprint_is_the_one_before_replicates(tmp_path):
    """Keys for replicates and backbone weights appear only when asked for, so a state file
    written before they existed still matches a default rerun."""
    before = {"lits", "ircadb", "profile", "configs", "seed", "protocol", "max_steps", "phantom"}
    assert set(wf.AblationArgs(out=tmp_path).fingerprint()) == before
    assert set(wf.AblationArgs(out=tmp_path, seed=4).fingerprint()) == before
    fp = wf.AblationArgs(out=tmp_path, replicates=2).fingerprint()
    assert fp["replicates"] == [{"split_seed": 0, "seed": 0}, {"split_seed": 1, "seed": 1}]


def test_replicates_repeat_the_graph_under_their_own_names(tmp_path):
    one = job_graph(wf.AblationArgs(out=tmp_path))
    three = job_graph(wf.AblationArgs(out=tmp_path, replicates=3))
    by_name = {j.name: j for j in three}
    shared = {"data:lits", "data:ircadb", "overlap"}
    per_replicate = [j for j in one if j.name not in shared | {"report"}]
    for r in (1, 2):
        for job in per_replicate:
            twin = by_name[f"rep{r}:{job.name}"]
            expected = {d if d in shared else f"rep{r}:{d}" for d in job.deps}
            if job.name == "cache":  # replicate 0's cache holds every case: built once
                expected.add("cache")
            assert set(twin.deps) == expected, twin
    assert len(three) == len(shared) + 3 * len(per_replicate) + 1
    assert sum(j.name.startswith("data:") for j in three) == 2  # the phantom is made once
    report = by_name["report"]
    assert len(report.deps) == 3 * sum(j.name.startswith("evaluate:") for j in one)
    assert all(Step.parse(d).kind == "evaluate" for d in report.deps)
    # a launcher runs the names as they are: every name maps back to its step
    assert Step.parse("rep2:train:dist") == Step("train", config="dist", replicate=2)
    assert Step.parse("rep1:predict:ircadb:dist") == Step("predict", "ircadb", "dist", 1)
    assert Step.parse("data:lits") == Step("data", "lits")
    for step in (Step("train", config="dist"), Step("evaluate", "lits_val", "edge", 3)):
        assert Step.parse(step.name) == step
    assert Step.parse("report") == Step("report") and Step("report").name == "report"


def test_replicate_seeds(tmp_path):
    def pairs(**kw):
        return [
            (r.split_seed, r.seed) for r in wf.AblationArgs(out=tmp_path, **kw).replicate_list()
        ]

    assert pairs() == [(0, 0)]
    assert pairs(seed=5, replicates=3) == [(5, 5), (6, 6), (7, 7)]
    assert pairs(split_seeds=[3, 9]) == [(3, 0), (9, 1)]
    assert pairs(split_seeds=[0, 0, 0], train_seeds=[0, 1, 2]) == [(0, 0), (0, 1), (0, 2)]
    with pytest.raises(InputError, match="--seeds names 2 seed"):
        pairs(replicates=3, train_seeds=[1, 2])
    with pytest.raises(InputError, match="repeat"):
        pairs(split_seeds=[1, 1], train_seeds=[2, 2])


def test_finished_steps_drop_a_step_whose_inputs_are_not_finished():
    jobs = [Job("a"), Job("b", ("a",)), Job("c", ("a",)), Job("report", ("b", "c"))]
    marked = {"a", "b", "report"}.__contains__
    assert finished_steps(jobs, marked) == ["a", "b"]  # report waited for c: stale
    assert finished_steps(jobs, {"a", "b", "c", "report"}.__contains__) == [
        "a",
        "b",
        "c",
        "report",
    ]


# -- a run ----------------------------------------------------------------------------------
def _csv_rows(run: Path, table: str) -> list[dict[str, str]]:
    from e2net_eval.util.textsafe import csv_uncell  # the formula guard of a "+ edge" label

    text = (run / "report" / "tables.csv").read_text(encoding="utf-8")
    rows = [{k: csv_uncell(v) for k, v in r.items()} for r in csv.DictReader(io.StringIO(text))]
    return [r for r in rows if r["table"] == table]


def _cell(rows, row: str, column: str, section: str = "measured") -> float:
    hit = [r for r in rows if (r["row"], r["column"], r["section"]) == (row, column, section)]
    assert len(hit) == 1, (row, column, rows)
    return float(hit[0]["value"])


def test_three_replicates_into_one_folder(rec, tmp_path, run_cli):
    run = tmp_path / "run"
    code, out, err = run_cli(
        "ablation", "-o", run, "--configs", "baseline,edge", "--replicates", "3"
    )
    assert code == 0, err
    # the phantom and the overlap once; every replicate its own split, training, predictions
    assert rec.stage_calls("write_phantom") == ["lits", "ircadb"]
    assert rec.stage_calls("find_overlap") == [None]
    assert [kw["seed"] for kw in rec.logged("make_split")] == [0, 1, 2]
    trains = rec.logged("train")
    assert len(trains) == 3 * 3
    for r in range(3):
        root = run if r == 0 else run / "replicates" / str(r)
        assert (root / "split.json").is_file()
        for config in ("stage1", "baseline", "edge"):
            for set_name in ("lits_val", "ircadb"):
                summary = json.loads(
                    (root / "eval" / set_name / config / "summary.json").read_text()
                )
                assert summary["meta"]["ablation"]["seed"] == r
                assert summary["meta"]["ablation"]["split_seed"] == r
                assert summary["meta"]["ablation"].get("replicate", 0) == r
    for r in range(3):
        runs = [kw for kw in trains if kw["seed"] == r]
        assert len(runs) == 3 and all(kw["split_seed"] == r for kw in runs)
        train_run = run / "train" if r == 0 else run / "replicates" / str(r) / "train"
        assert {Path(kw["run_dir"]) for kw in runs} == {train_run}
    # every replicate trains from replicate 0's slice cache
    assert {str(kw["cache_dir"]) for kw in trains} == {str(run / "train" / "cache")}
    info = json.loads((run / "ablation.json").read_text())
    assert [(r["index"], r["split_seed"], r["seed"]) for r in info["replicates"]] == [
        (0, 0, 0),
        (1, 1, 1),
        (2, 2, 2),
    ]
    # the report: spread per configuration and wins per pair, as computed here
    spread = _csv_rows(run, "replicates_lits_val")
    tumour = [100 * DICE[r]["baseline"][1] for r in range(3)]
    assert _cell(spread, "Baseline (2nd stage)", "tumour_dice_per_case_mean") == pytest.approx(
        np.mean(tumour)
    )
    assert _cell(spread, "Baseline (2nd stage)", "tumour_dice_per_case_sd") == pytest.approx(
        np.std(tumour, ddof=1)
    )
    assert _cell(spread, "Baseline (2nd stage)", "tumour_dice_per_case_min") == pytest.approx(60)
    assert _cell(spread, "Baseline (2nd stage)", "tumour_dice_per_case_max") == pytest.approx(70)
    assert _cell(spread, "+ dist + DCFF", "liver_dice_per_case_mean", "published") == 97.8
    wins = _csv_rows(run, "wins_lits_val")
    diff = [100 * (DICE[r]["edge"][1] - DICE[r]["baseline"][1]) for r in range(3)]
    row = "+ edge vs Baseline (2nd stage), tumour"
    assert _cell(wins, row, "wins") == pytest.approx(2 / 3)
    assert _cell(wins, row, "diff") == pytest.approx(np.mean(diff))
    assert _cell(wins, row, "sd") == pytest.approx(np.std(diff, ddof=1))
    assert _cell(wins, row, "sign_p") == pytest.approx(sstats.binomtest(2, 3).pvalue)
    assert _cell(wins, row, "paper") == pytest.approx(72.2 - 71.4)
    assert _cell(wins, "Baseline (2nd stage) vs 1st stage, liver", "wins") == 1.0
    assert _cell(wins, "+ edge vs Baseline (2nd stage), liver", "wins") == pytest.approx(2 / 3)
    assert not [r for r in wins if r["row"] == "Baseline (2nd stage) vs 1st stage, tumour"]
    md = (run / "report" / "report.md").read_text()
    assert "Replicates: 3, split seeds 0, 1, 2; training seeds 0, 1, 2" in md
    assert "replicate 0, seed 0" in md  # the single-run tables say whose they are
    html = (run / "report" / "report.html").read_text()
    assert "over 3 replicates" in html and "figures/replicates_lits_val.png" in md


def test_one_replicate_run_extended_keeps_what_is_done(rec, tmp_path, run_cli):
    run = tmp_path / "run"
    assert run_cli("ablation", "-o", run, "--configs", "baseline")[0] == 0
    state = json.loads((run / "ablation_state.json").read_text())
    assert "replicates" not in state["args"]  # a default run is recorded as it always was
    rec.reset()
    code, out, err = run_cli("ablation", "-o", run, "--configs", "baseline", "--replicates", "3")
    assert code == 0, err
    assert "run again" in err and "report" in err
    assert rec.stage_calls("write_phantom") == [] and rec.stage_calls("find_overlap") == []
    trained = [kw["seed"] for kw in rec.logged("train")]
    assert len(trained) == 2 * 2 and sorted(set(trained)) == [1, 2]
    assert {r for r, *_ in rec.stage_calls("evaluate")} == {1, 2}
    assert len(_csv_rows(run, "replicates_lits_val")) > 0  # the report was written again
    # the same arguments again: nothing to do
    rec.reset()
    assert run_cli("ablation", "-o", run, "--configs", "baseline", "--replicates", "3")[0] == 0
    assert rec.calls == []
    # fewer replicates, or other seeds for a finished one, are refused
    for extra in (["--replicates", "2"], ["--split-seeds", "0,5,6"], []):
        code, _, err = run_cli("ablation", "-o", run, "--configs", "baseline", *extra)
        assert code == 2 and "replicates" in err, (extra, err)
    # other arguments are still refused, with or without more replicates
    code, _, err = run_cli(
        "ablation", "-o", run, "--configs", "baseline", "--replicates", "4", "--max-steps", "3"
    )
    assert code == 2 and "max_steps" in err
    assert rec.calls == []


def test_bad_replicate_arguments_exit_2_before_any_work(rec, tmp_path, run_cli):
    for args in (
        ["--replicates", "0"],
        ["--replicates", "3", "--seeds", "1,2"],
        ["--split-seeds", "1,x"],
        ["--split-seeds", "1,1", "--seeds", "4,4"],
    ):
        code, _, err = run_cli("ablation", "-o", tmp_path / "r", *args)
        assert code == 2, (args, err)
    assert rec.calls == [] and not (tmp_path / "r").exists()


def test_replicate_budget_and_paths_in_the_state_file(rec, tmp_path):
    run = tmp_path / "run"
    wf.run_ablation(wf.AblationArgs(out=run, configs=["baseline"], replicates=2, max_steps=7))
    state = json.loads((run / "ablation_state.json").read_text())
    names = set(state["steps"])
    assert {
        "rep1:split",
        "rep1:cache",
        "rep1:train:baseline",
        "rep1:evaluate:ircadb:stage1",
    } <= names
    assert state["steps"]["rep1:train:baseline"]["outputs"]["dir"] == str(
        run / "replicates" / "1" / "train" / "baseline"
    )
    kw = rec.kwargs[("train", "baseline")]  # the last call: replicate 1
    assert kw["max_steps"] == 7 != get_model("baseline").steps_for("small")
    assert kw["split"] == run / "replicates" / "1" / "split.json" and kw["seed"] == 1
