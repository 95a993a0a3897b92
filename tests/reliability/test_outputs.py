"""Items 1, 2, 5, 6, 7, 12 and 13 of issue 11: output folders.

No command empties a folder it did not fill or deletes an input; a result set appears
whole or not at all (the old one stays until the new one is complete); one writer per
output; a killed or terminated run leaves nothing behind that a later run keeps; modes
follow the umask."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import stat

import nibabel as nib
import numpy as np
import pytest

from tests.helpers.reliability import (
    copy_of,
    kill_quietly,
    one_error_line,
    output,
    run_proc,
    start_proc,
    tree,
)
from tests.helpers.report_fakes import fake_run


def _leftovers(folder):
    """Hidden entries (temporaries, lock files) in `folder`."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------------------------
# item 1: report -o never empties a folder without --overwrite, never deletes a run
# ---------------------------------------------------------------------------------------


def test_item01_report_never_empties_a_folder_or_deletes_a_run(tmp_path, run_cli):
    run = tmp_path / "run"
    fake_run(run)
    run_files = tree(run)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    for extra in ([], ["--overwrite"]):
        code, _, err = run_cli("report", run, "-o", mine, *extra)
        assert code == 2, (extra, err)
        one_error_line(err, "mine")
        assert (mine / "notes.txt").read_text() == "my notes"
    for target in (run, tmp_path):  # the run itself, and a folder holding the run
        for extra in ([], ["--overwrite"]):
            code, _, err = run_cli("report", run, "-o", target, *extra)
            assert code == 2, (target, extra, err)
            one_error_line(err)
            assert tree(run) == run_files
    # what is allowed: a new folder, then replacing that report with --overwrite
    code, _, err = run_cli("report", run, "-o", tmp_path / "rep")
    assert code == 0, err
    code, _, err = run_cli("report", run, "-o", tmp_path / "rep")
    assert code == 2 and "--overwrite" in err
    code, _, err = run_cli("report", run, "-o", tmp_path / "rep", "--overwrite")
    assert code == 0, err
    code, _, err = run_cli("report", run)  # the default, RUN/report, inside the run
    assert code == 0, err
    assert (run / "report" / "report.html").is_file()
    assert {k: v for k, v in tree(run).items() if not k.startswith("report/")} == run_files


# ---------------------------------------------------------------------------------------
# item 2: convert never deletes its input
# ---------------------------------------------------------------------------------------


def test_item02_convert_never_deletes_its_input(data, tmp_path, run_cli):
    outer = tmp_path / "outer"
    root = copy_of(data, "lits", outer / "lits")
    before = tree(outer)
    for out in (outer, root, root / "nii", tmp_path):
        code, _, err = run_cli("datasets", "convert", root, out, "--overwrite")
        assert code == 2, (out, err)
        one_error_line(err, "input")
        assert tree(outer) == before
    assert not (root / "nii").exists()


# ---------------------------------------------------------------------------------------
# item 5: a failed predict leaves the previous result set and its predict.json untouched
# ---------------------------------------------------------------------------------------


def _fingerprint(folder):
    return {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def test_item05_failed_predict_keeps_the_old_set_untouched(one_step_run, train_data, tmp_path):
    out = tmp_path / "pred"
    args = ["predict", one_step_run, "-o", out, "--config", "stage1", "--no-progress"]
    res = run_proc(*args, "--data", train_data)
    assert res.returncode == 0, res.stderr
    old = _fingerprint(out)
    assert "predict.json" in old and len(old) >= 5
    bad = copy_of(train_data.parent, "lits", tmp_path / "bad")
    last = sorted(p.name for p in bad.glob("volume-*"))[-1]
    (bad / last).write_bytes((bad / last).read_bytes()[:-500])  # fails at the last case
    res = run_proc(*args, "--data", bad, "--overwrite")
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, last)
    assert _fingerprint(out) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "pred"]


# ---------------------------------------------------------------------------------------
# items 6 and 7: evaluate writes one set under a lock; a repeated --case counts once
# ---------------------------------------------------------------------------------------


def _prediction_sets(data, tmp_path):
    """(perfect predictions, the same with case 0 predicted empty)."""
    good, worse = tmp_path / "good", tmp_path / "worse"
    for folder in (good, worse):
        folder.mkdir()
        for seg in (data / "lits").glob("segmentation-*.nii"):
            shutil.copy(seg, folder / seg.name)
    img = nib.load(worse / "segmentation-0.nii", mmap=False)
    empty = np.zeros(img.shape, dtype=np.uint8)
    (worse / "segmentation-0.nii").unlink()
    nib.save(nib.Nifti1Image(empty, img.affine), worse / "segmentation-0.nii")
    return good, worse


def _read_set(out):
    summary = json.loads((out / "summary.json").read_text())
    with open(out / "per_case.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return summary, rows


def test_item06_evaluate_swaps_in_one_set_under_a_lock(data, tmp_path):
    good, worse = _prediction_sets(data, tmp_path)
    ref, out = data / "lits", tmp_path / "ev"
    first = start_proc(
        "evaluate", good, ref, "-o", out, "--no-progress",
        fault="outdir.before_swap:pause", ready=tmp_path / "ready",
    )  # fmt: skip
    try:
        res = run_proc("evaluate", worse, ref, "-o", out, "--no-progress")
        assert res.returncode == 2, res.stderr
        one_error_line(res.stderr, "ev", f"pid {first.pid}")
    finally:
        kill_quietly(first)  # killed just before its swap: nothing of it may appear
    assert not out.exists()
    res = run_proc("evaluate", worse, ref, "-o", out, "--no-progress")
    assert res.returncode == 0, res.stderr
    assert _leftovers(tmp_path) == []  # the killed run's temporary folder was removed
    summary, rows = _read_set(out)
    assert summary["meta"]["prediction_dir"] == str(worse.resolve())
    cases = list(dict.fromkeys(r["case"] for r in rows))
    assert cases == [c["case"] for c in summary["metric_per_case"]]
    liver = {r["case"]: float(r["dice"]) for r in rows if r["region"] == "liver"}
    assert liver["0"] == 0.0 and liver["1"] == 1.0  # CSV and summary from the same run
    assert summary["metric_per_case"][0]["liver"]["dice"] == 0.0


def test_item07_a_repeated_case_is_scored_once(data, tmp_path, run_cli):
    good, _ = _prediction_sets(data, tmp_path)
    ref = data / "lits"
    code, _, err = run_cli("evaluate", good, ref, "-o", tmp_path / "once", "--case", "1")
    assert code == 0, err
    code, _, err = run_cli(
        "evaluate", good, ref, "-o", tmp_path / "twice", "--case", "1", "--case", "1"
    )
    assert code == 0, err
    once, once_rows = _read_set(tmp_path / "once")
    twice, twice_rows = _read_set(tmp_path / "twice")
    assert twice["n_cases"] == 1 and len(twice_rows) == len(once_rows) == 2
    assert twice["detection"] == once["detection"]
    assert twice["regions"] == once["regions"]


# ---------------------------------------------------------------------------------------
# item 12: SIGTERM removes the temporary folder; one left by SIGKILL goes on the next run
# ---------------------------------------------------------------------------------------


def test_item12_terminated_convert_leaves_no_temporary(data, tmp_path):
    root = copy_of(data, "lits", tmp_path / "in")
    out, ready = tmp_path / "out", tmp_path / "ready"
    args = ("datasets", "convert", root, out)
    proc = start_proc(*args, fault="convert.case@2:pause", ready=ready)
    proc.send_signal(signal.SIGTERM)
    _, err = output(proc)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "ready"]
    # SIGKILL cannot be caught: its temporary stays, and the next run removes it
    shutil.rmtree(ready)
    proc = start_proc(*args, fault="convert.case@2:pause", ready=ready)
    proc.send_signal(signal.SIGKILL)
    output(proc)
    assert _leftovers(tmp_path), "a SIGKILLed convert leaves its temporary folder"
    assert not out.exists()
    res = run_proc(*args)
    assert res.returncode == 0, res.stderr
    assert _leftovers(tmp_path) == []
    assert sorted(p.name for p in out.glob("*.nii.gz")) == sorted(
        f"{kind}-{i}.nii.gz" for kind in ("volume", "segmentation") for i in range(3)
    )


# ---------------------------------------------------------------------------------------
# item 13: files and folders get the modes the umask gives
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_item13_outputs_follow_the_umask(data, tmp_path, umask):
    good, _ = _prediction_sets(data, tmp_path)
    phantom, ev = tmp_path / "phantom", tmp_path / "ev"
    res = run_proc(
        "datasets", "phantom", phantom, "--cases", "1", "--size", "32", "--slices", "6", "8",
        "--layout", "ircadb", umask=umask,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    res = run_proc("evaluate", good, data / "lits", "-o", ev, "--no-progress", umask=umask)
    assert res.returncode == 0, res.stderr
    checked = 0
    for top in (phantom, ev):
        for path in [top, *top.rglob("*")]:
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            want = (0o777 if path.is_dir() else 0o666) & ~umask
            assert mode == want, (path, oct(mode), oct(want))
            checked += 1
    assert checked > 10


def test_single_file_outputs_never_replace_an_input(data, tmp_path, run_cli):
    """`--json`/`-o FILE` outputs: never a file the command reads, never inside a dataset."""
    good, _ = _prediction_sets(data, tmp_path)
    code, _, err = run_cli("evaluate", good, data / "lits", "-o", tmp_path / "ev")
    assert code == 0, err
    summary = tmp_path / "ev" / "summary.json"
    before = summary.read_bytes()
    code, _, err = run_cli("regress", summary, summary, "--json", summary)
    assert code == 2 and summary.read_bytes() == before, err
    one_error_line(err, "reads")
    root = copy_of(data, "lits", tmp_path / "lits")
    files = tree(root)
    for args in (
        ["datasets", "split", root, "--seed", "0", "-o", root / "split.json"],
        ["datasets", "check", root, "--json", root / "volume-0.nii"],
    ):
        code, _, err = run_cli(*args)
        assert code == 2, (args, err)
        one_error_line(err, "inside the input folder")
    assert tree(root) == files
