"""Items 9, 11 and 14 of issue 11: processes, kills and concurrent writers.

Killed at a named point (`e2net_eval.util.faults`), so every kill lands where the test
says, not where a timer happened to be."""

from __future__ import annotations

import json
import os
import shutil
import signal

import pytest

from tests.helpers.reliability import (
    PATIENCE_S,
    TRAIN,
    alive,
    kill_quietly,
    one_error_line,
    run_proc,
    start_proc,
    wait_for,
)

# ---------------------------------------------------------------------------------------
# item 9: one train process per run folder
# ---------------------------------------------------------------------------------------


def test_item09_a_second_train_of_a_configuration_is_refused(train_data, tmp_path):
    """One `train` per configuration of a run folder: a second one is refused with the
    first one's pid (they would interleave metrics.jsonl and overwrite each other's
    checkpoints); another configuration trains beside it (the ablation's workers do)."""
    run = tmp_path / "run"
    first = start_proc(
        "train", "stage1", "--data", train_data, "-o", run, *TRAIN,
        fault="train.step:pause", ready=tmp_path / "ready",
    )  # fmt: skip
    try:
        res = run_proc("train", "stage1", "--data", train_data, "-o", run, *TRAIN, "--resume")
        assert res.returncode == 2, res.stderr
        one_error_line(res.stderr, "run", f"pid {first.pid}")
        stage1_files = sorted(p.name for p in (run / "stage1").iterdir())
        res = run_proc("train", "baseline", "--data", train_data, "-o", run, *TRAIN)
        assert res.returncode == 0, res.stderr
        assert sorted(p.name for p in (run / "stage1").iterdir()) == stage1_files
    finally:
        kill_quietly(first)
    # its holder gone, the lock is free: the run continues
    res = run_proc("train", "stage1", "--data", train_data, "-o", run, *TRAIN, "--resume")
    assert res.returncode == 0, res.stderr
    lines = (run / "stage1" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [0]


# ---------------------------------------------------------------------------------------
# item 11: evaluate --jobs N workers die with their parent
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_item11_evaluate_workers_die_with_their_parent(data, tmp_path, sig):
    pred = tmp_path / "pred"
    pred.mkdir()
    for seg in (data / "lits").glob("segmentation-*.nii"):
        shutil.copy(seg, pred / seg.name)
    ready, out = tmp_path / "ready", tmp_path / "ev"
    parent = start_proc(
        "evaluate", pred, data / "lits", "-o", out, "--jobs", "2", "--no-progress",
        fault="evaluate.case:pause", ready=ready,
    )  # fmt: skip
    workers: list[int] = []
    try:
        wait_for(lambda: len(list(ready.glob("evaluate.case.*"))) == 2, "two paused workers")
        workers = [int(p.name.rsplit(".", 1)[1]) for p in ready.glob("evaluate.case.*")]
        assert parent.pid not in workers and all(alive(w) for w in workers)
        parent.send_signal(sig)
        parent.wait(timeout=PATIENCE_S)
        wait_for(lambda: not any(alive(w) for w in workers), "the workers to end")
    finally:
        kill_quietly(parent)
        for w in workers:  # on failure: leave no orphan behind
            if alive(w):
                os.kill(w, signal.SIGKILL)
    if sig == signal.SIGTERM:
        assert parent.returncode == 128 + signal.SIGTERM
    assert not out.exists()


# ---------------------------------------------------------------------------------------
# item 14: a kill between the metrics line and the checkpoint duplicates no epoch
# ---------------------------------------------------------------------------------------


def test_item14_kill_after_the_metrics_line_leaves_no_duplicate_epoch(train_data, tmp_path):
    run = tmp_path / "run"
    args = ["train", "stage1", "--data", train_data, "-o", run, "--max-steps", "3"]
    args += ["--batch-size", "2", "--steps-per-epoch", "1", "--no-progress"]
    res = run_proc(*args, fault="train.after_metrics_line@2:kill")
    assert res.returncode == -signal.SIGKILL, res.stderr
    metrics = run / "stage1" / "metrics.jsonl"
    assert [json.loads(ln)["epoch"] for ln in metrics.read_text().splitlines()] == [0, 1]
    res = run_proc(*args, "--resume")
    assert res.returncode == 0, res.stderr
    epochs = [json.loads(ln)["epoch"] for ln in metrics.read_text().splitlines()]
    assert epochs == [0, 1, 2]
