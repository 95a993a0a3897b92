"""`e2net-eval ablation` orchestration: order, protocols, resume, no double work, refusals.

The stages (data, training, inference, metrics) are replaced by recording fakes that write
schema-valid outputs; the real end-to-end run is `test_ablation_end_to_end` (slow).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

import e2net_eval.data
import e2net_eval.inference
import e2net_eval.metrics
import e2net_eval.training
from e2net_eval.workflows import ablation as wf
from e2net_eval.workflows.ablation.args import (
    PHANTOM_IRCADB_INDICES,
    PHANTOM_LITS_CASES,
    PHANTOM_N_VAL,
)
from e2net_eval.workflows.launch import local
from reference_models import get_model, list_models
from tests.helpers.report_fakes import fake_summary, write_summary

N_LITS = 12
OVERLAP = {"2": "3Dircadb1.1", "5": "3Dircadb1.2", "9": "3Dircadb1.3"}


class FakeDataset:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.layout = "ircadb" if "ircadb" in self.root.name else "lits"

    def case_ids(self) -> list[str]:
        if self.layout == "ircadb":
            return list(OVERLAP.values())
        return [str(i) for i in range(N_LITS)]


class Recorder:
    """Fake stages; `calls` lists (stage, key) in call order; `fail_on` raises once."""

    def __init__(self):
        self.calls: list[tuple[str, object]] = []
        self.kwargs: dict[tuple[str, object], dict] = {}
        self.fail_on: tuple[str, object] | None = None

    def _hit(self, key, kwargs):
        self.calls.append(key)
        self.kwargs[key] = kwargs
        if key == self.fail_on:
            self.fail_on = None
            raise KeyboardInterrupt("killed")

    def write_phantom(self, out, spec, **kw):
        self._hit(("write_phantom", spec.layout), {**dataclasses.asdict(spec), **kw})
        Path(out).mkdir(parents=True, exist_ok=True)
        return spec.case_indices()

    def find_overlap(self, lits, ircadb, **kw):
        self._hit(("find_overlap", None), kw)
        return [{"lits": k, "ircadb": v, "score": 1.0} for k, v in OVERLAP.items()]

    def make_split(self, case_ids, seed, *, exclude=(), n_val=None, strata=None):
        self._hit(("make_split", None), {"seed": seed, "exclude": list(exclude), "n_val": n_val})
        pool = [c for c in case_ids if c not in set(exclude)]
        k = min(n_val or 2, len(pool) - 1)  # a split has training cases
        return {"seed": seed, "train": pool[k:], "validation": pool[:k], "exclude": list(exclude)}

    def train(self, config, data_root, run_dir, **kw):
        self._hit(("train", config), {"data_root": data_root, **kw})
        (Path(run_dir) / config).mkdir(parents=True, exist_ok=True)
        return {"steps": kw.get("max_steps"), "reason": "max_steps"}

    def prepare_run(self, data_root, run_dir, **kw):
        self._hit(("prepare_run", None), {"data_root": data_root, **kw})
        return Path(run_dir) / "cache"

    def predict(
        self, run_dir, data_root, out_dir, *, config=None, case_ids=None, device="auto", **kw
    ):
        self._hit(
            ("predict", (Path(data_root).name, config)), {"case_ids": case_ids, "device": device}
        )
        ids = case_ids if case_ids is not None else FakeDataset(data_root).case_ids()
        out = []
        for cid in ids:
            p = Path(out_dir) / f"{cid}.nii.gz"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"")
            out.append(p)
        return out

    def evaluate(self, pred_dir, ref_root, out_dir, *, case_ids=None, protocol=None, **kw):
        self._hit(
            ("evaluate", (Path(ref_root).name, Path(pred_dir).name)),
            {"case_ids": case_ids, "protocol": protocol},
        )
        ids = case_ids if case_ids is not None else FakeDataset(ref_root).case_ids()
        summary = fake_summary([0.9] * len(ids), [0.5 + 0.01 * i for i in range(len(ids))])
        for row, cid in zip(summary["metric_per_case"], ids, strict=True):
            row["case"] = cid
        summary["meta"].update(kw.get("extra_meta") or {})
        write_summary(Path(out_dir) / "summary.json", summary)
        return summary

    def stage_calls(self, stage: str) -> list:
        return [key for s, key in self.calls if s == stage]


def install_fakes(r: Recorder, monkeypatch) -> Recorder:
    """Replace the ablation's stages by `r`'s recording fakes."""
    for mod, name in [
        (e2net_eval.data, "write_phantom"),
        (e2net_eval.data, "find_overlap"),
        (e2net_eval.data, "make_split"),
        (e2net_eval.training, "prepare_run"),
        (e2net_eval.training, "train"),
        (e2net_eval.inference, "predict"),
        (e2net_eval.metrics, "evaluate"),
    ]:
        monkeypatch.setattr(mod, name, getattr(r, name), raising=False)
    monkeypatch.setattr(e2net_eval.data, "open_dataset", FakeDataset, raising=False)
    monkeypatch.setattr(
        local, "default_workers", lambda profile, device: 1
    )  # fakes live in this process
    return r


@pytest.fixture
def rec(monkeypatch):
    return install_fakes(Recorder(), monkeypatch)


def test_default_run_order_and_leak_free_split(rec, tmp_path, run_cli):
    run = tmp_path / "run"
    code, out, err = run_cli("ablation", "-o", run, "--seed", "3")
    assert code == 0, err
    assert rec.stage_calls("train") == list_models()
    assert rec.calls.index(("make_split", None)) < rec.calls.index(("train", "stage1"))
    split_kw = rec.kwargs[("make_split", None)]
    assert sorted(split_kw["exclude"]) == sorted(OVERLAP) and split_kw["seed"] == 3
    assert split_kw["n_val"] == PHANTOM_N_VAL
    kw = rec.kwargs[("train", "edge")]
    assert kw["split"] == run / "split.json" and kw["seed"] == 3 and kw["resume"] is True
    assert kw["max_steps"] == get_model("edge").steps_for("small") and kw["profile"] == "small"
    # split.json is the fake's here (real splits: test_real_phantom_overlap_and_split);
    # what is checked is that prediction reads its validation list
    split = json.loads((run / "split.json").read_text())
    val_kw = rec.kwargs[("predict", ("lits", "dist_dcff"))]
    assert val_kw["case_ids"] == split["validation"]
    assert rec.kwargs[("predict", ("ircadb", "dist_dcff"))]["case_ids"] is None
    assert len(rec.stage_calls("evaluate")) == 2 * len(list_models())
    summary = json.loads((run / "eval" / "ircadb" / "edge" / "summary.json").read_text())
    assert summary["meta"]["ablation"]["protocol"] == "leak-free"
    assert (
        summary["meta"]["ablation"]["seed"] == 3 and summary["meta"]["ablation"]["config"] == "edge"
    )
    info = json.loads((run / "ablation.json").read_text())
    assert (
        info["protocol"] == "leak-free" and info["profile"] == "small" and len(info["overlap"]) == 3
    )
    state = json.loads((run / "ablation_state.json").read_text())
    assert all(s["done"] for s in state["steps"].values()) and len(state["steps"]) == len(
        wf.plan(wf.AblationArgs(out=run, configs=list_models()))
    )
    html = (run / "report" / "report.html").read_text()
    assert "protocol leak-free, profile small, seed 3" in html
    assert "report.html" in out


def test_rerun_does_no_work_twice(rec, tmp_path, run_cli):
    run = tmp_path / "run"
    assert run_cli("ablation", "-o", run)[0] == 0
    n = len(rec.calls)
    code, _, err = run_cli("ablation", "-o", run)
    assert code == 0, err
    assert len(rec.calls) == n


def test_killed_run_resumes_where_it_stopped(rec, tmp_path, run_cli):
    run = tmp_path / "run"
    rec.fail_on = ("train", "dist")
    args = wf.AblationArgs(out=run)
    with pytest.raises(KeyboardInterrupt):
        wf.run_ablation(args)
    assert rec.stage_calls("train") == ["stage1", "baseline", "edge", "dist"]
    rec.calls.clear()
    code, _, err = run_cli("ablation", "-o", run)
    assert code == 0, err
    assert rec.stage_calls("train") == ["dist", "edge_dcff", "dist_dcff"]
    assert rec.stage_calls("write_phantom") == [] and ("make_split", None) not in rec.calls


def test_other_arguments_into_same_dir_are_refused(rec, tmp_path, run_cli):
    run = tmp_path / "run"
    assert run_cli("ablation", "-o", run, "--configs", "baseline")[0] == 0
    assert rec.stage_calls("train") == ["stage1", "baseline"]
    code, _, err = run_cli("ablation", "-o", run, "--seed", "1", "--configs", "baseline")
    assert code == 2 and "seed" in err
    code, _, err = run_cli("ablation", "-o", run, "--paper-protocol", "--configs", "baseline")
    assert code == 2 and "protocol" in err


def test_paper_protocol_keeps_overlap_in_training(rec, tmp_path, run_cli):
    run = tmp_path / "run"
    code, _, err = run_cli("ablation", "-o", run, "--paper-protocol", "--configs", "baseline")
    assert code == 0, err
    assert rec.kwargs[("make_split", None)]["exclude"] == []
    split = json.loads((run / "split.json").read_text())
    assert split["protocol"] == "paper" and sorted(split["in_training_but_3dircadb"]) == sorted(
        OVERLAP
    )
    summary = json.loads((run / "eval" / "lits_val" / "baseline" / "summary.json").read_text())
    assert summary["meta"]["ablation"]["protocol"] == "paper"


def test_user_data_without_ircadb(rec, tmp_path, run_cli):
    lits = tmp_path / "lits"
    lits.mkdir()
    code, _, err = run_cli(
        "ablation", "--lits", lits, "-o", tmp_path / "run", "--configs", "dist", "--max-steps", "5"
    )
    assert code == 0, err
    assert rec.stage_calls("write_phantom") == [] and rec.stage_calls("find_overlap") == []
    assert rec.kwargs[("make_split", None)]["n_val"] is None  # the paper's 20-of-131 rule
    assert rec.kwargs[("train", "dist")]["max_steps"] == 5
    assert {k[0] for k in rec.stage_calls("predict")} == {"lits"}


def test_bad_arguments_exit_2(rec, tmp_path, run_cli):
    code, _, err = run_cli("ablation", "-o", tmp_path / "r", "--configs", "nope")
    assert code == 2 and "nope" in err
    code, _, err = run_cli("ablation", "-o", tmp_path / "r2", "--ircadb", tmp_path)
    assert code == 2 and "--lits" in err
    code, _, err = run_cli("ablation", "-o", tmp_path / "r3", "--lits", tmp_path / "missing")
    assert code == 2 and "missing" in err
    assert rec.calls == []


def test_real_phantom_overlap_and_split(gate_prefix):
    """The real data layer's first steps of the CI gate's ablation (`conftest.gate_prefix`):
    the 3DIRCADb patients found among the LiTS cases and left out of the split."""
    run = gate_prefix
    state = json.loads((run / "ablation_state.json").read_text())
    found = {m["lits"]: m["ircadb"] for m in state["steps"]["overlap"]["outputs"]}
    planted = {str(i): f"3Dircadb1.{k + 1}" for k, i in enumerate(PHANTOM_IRCADB_INDICES)}
    assert found == planted  # found from image content, not from ids
    split = json.loads((run / "split.json").read_text())
    assert sorted(split["exclude"]) == sorted(planted)
    assert not (set(split["train"]) | set(split["validation"])) & set(planted)
    assert len(split["validation"]) == PHANTOM_N_VAL
    assert len(split["train"]) == PHANTOM_LITS_CASES - len(planted) - PHANTOM_N_VAL
    # stratified by tumour: the validation set has the set's share of tumour-free cases,
    # which are read from the reference labels themselves (not from the split)
    free = _tumour_free_cases(run / "data" / "lits")
    pool = {str(i) for i in range(PHANTOM_LITS_CASES)} - set(planted)
    assert 0 < len(free & pool) < len(pool)
    expected = PHANTOM_N_VAL * len(free & pool) / len(pool)
    assert abs(len(free & set(split["validation"])) - expected) < 1


def _tumour_free_cases(lits: Path) -> set[str]:
    """LiTS case ids whose `segmentation-N.nii` has no voxel of label 2."""
    import nibabel as nib
    import numpy as np

    return {
        p.name.split("-")[1].split(".")[0]
        for p in lits.glob("segmentation-*.nii*")
        if not (np.asarray(nib.load(str(p)).dataobj) == 2).any()
    }


def test_a_folder_in_use_is_refused_and_a_killed_holders_lock_is_free(rec, tmp_path, run_cli):
    """A second ablation into a folder another one works in is refused; the lock of a
    SIGKILLed one is free at once (the kernel's, no pid guessing)."""
    import subprocess

    from e2net_eval.rundir import LOCK_FILE

    run = tmp_path / "run"
    run.mkdir()
    hold = (
        "import sys, time; from e2net_eval.util import lock; "
        "lock.acquire(sys.argv[1], who='ablation', where='run'); print('held', flush=True); "
        "time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(run / LOCK_FILE)], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline().strip() == b"held"
        code, _, err = run_cli("ablation", "-o", run, "--configs", "baseline")
        assert code == 2 and "another ablation" in err and f"pid {holder.pid}" in err
        assert rec.calls == []
    finally:
        holder.kill()
        holder.wait()
    code, _, err = run_cli("ablation", "-o", run, "--configs", "baseline")
    assert code == 0, err
    assert not (run / LOCK_FILE).exists()
