"""The trainer's rules without training: resume decisions, settings guards, the shape of
the code (one object, short steps, no formatter switched off)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from e2net_eval.errors import InputError
from e2net_eval.training import resume as r
from e2net_eval.training import trainer as t
from e2net_eval.training.distributed import DistInfo
from e2net_eval.training.job import TrainJob, settings_for

TRAINER = Path(t.__file__)
DONE_STEPS = {"reason": "max_steps", "steps": 5, "epochs": 1}
DONE_EPOCHS = {"reason": "max_epochs", "steps": 50, "epochs": 4}


def _decide(done=None, ckpt=False, resume=False, force=False, max_steps=None, max_epochs=None):
    return r.resume_decision(
        done, ckpt, resume=resume, force=force, max_steps=max_steps, max_epochs=max_epochs
    )


def test_resume_decisions():
    assert _decide() == r.START
    assert _decide(ckpt=True) == r.REFUSE  # a checkpoint and no --resume
    assert _decide(ckpt=True, resume=True) == r.CONTINUE
    assert _decide(DONE_STEPS, ckpt=True, force=True) == r.START_OVER
    assert _decide(DONE_STEPS, ckpt=True, max_steps=9) == r.SKIP  # done, no --resume
    assert _decide(DONE_STEPS, ckpt=True, resume=True, max_steps=5) == r.SKIP  # not raised
    assert _decide(DONE_STEPS, ckpt=True, resume=True, max_steps=9) == r.CONTINUE
    assert _decide(DONE_STEPS, ckpt=True, resume=True, max_epochs=9) == r.SKIP  # other limit
    assert _decide(DONE_EPOCHS, ckpt=True, resume=True, max_epochs=5) == r.CONTINUE
    assert _decide({"reason": "schedule", "steps": 3, "epochs": 9}, True, True, max_steps=99) == (
        r.SKIP
    )  # the schedule stopped it: nothing to resume to


def test_resume_guards():
    settings = settings_for("small")
    state = {"seed": 0, "settings": settings.to_dict()}
    r.check_resumable(state, 0, settings)
    more = settings_for("small", max_epochs=99, num_workers=2, steps_per_epoch=7)
    r.check_resumable(state, 0, more)  # limits and loader processes may change
    with pytest.raises(InputError, match="seed"):
        r.check_resumable(state, 1, settings)
    with pytest.raises(InputError, match="batch_size"):
        r.check_resumable(state, 0, settings_for("small", batch_size=4))
    listed = {**settings.to_dict(), "margin_px": [10, 60]}  # JSON lists equal tuples
    assert r.changed_settings(listed, settings.to_dict()) == []


def test_trainer_functions_are_short_and_formatted():
    source = TRAINER.read_text(encoding="utf-8")
    assert "fmt: skip" not in source and "fmt: off" not in source
    tree = ast.parse(source)
    lengths = {
        node.name: node.end_lineno - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    assert max(lengths.values()) <= 60, sorted(lengths.items(), key=lambda kv: -kv[1])[:3]
    assert {"prepare", "build", "run_epoch", "validate", "checkpoint", "finish"} <= set(lengths)


def test_bench_reuses_the_trainers_steps(monkeypatch):
    """`bench train` runs `Trainer.step` (the trainer's network, optimiser and step)."""
    import torch

    from e2net_eval.training import bench

    calls = []
    real = t.Trainer.step

    def spy(self, batch):
        calls.append(self.job.config)
        return real(self, batch)

    monkeypatch.setattr(t.Trainer, "step", spy)
    row = bench._train_row("baseline", "small", 2, 1, torch.device("cpu"))
    # warm-up + 1 timed step in channels-last, then the same in contiguous tensors (the
    # reference the speed-up is measured against, in the same run)
    assert calls == ["baseline"] * 4 and row["batch_size"] == 2
    assert row["speedup_vs_contiguous"] > 0


def test_validation_dice_counts_a_false_tumour_on_a_tumour_free_slice():
    """Per-sample Dice with the LiTS empty rule (what the small profile's schedule follows)
    against the pooled Dice: a few false tumour pixels on a tumour-free slice cost that
    whole sample in the first and almost nothing in the second."""
    import torch

    mask = torch.zeros(2, 2, 4, 4)
    mask[:, 0] = 1  # liver everywhere on both slices
    mask[0, 1, :2, :2] = 1  # slice 0: 4 tumour pixels; slice 1: none
    logits = torch.where(mask > 0, 5.0, -5.0)
    logits[1, 1, 3, 3] = 5.0  # one false tumour pixel on the tumour-free slice
    sums = t._dice_sums(logits, mask)
    assert sums[0].tolist() == [64.0, 8.0]  # 2|P∩R| per channel, pooled
    assert sums[1].tolist() == [64.0, 9.0]  # |P| + |R|
    assert sums[2].tolist() == [2.0, 1.0]  # per sample: tumour 1 (slice 0) + 0 (slice 1)
    logits[1, 1, 3, 3] = -5.0
    assert t._dice_sums(logits, mask)[2].tolist() == [2.0, 2.0]  # both empty counts 1


def test_schedule_signal_follows_the_profile():
    import torch

    val = {"val_loss": 0.7, "val_dice": 0.8, "val_dice_global": 0.9}
    cpu = torch.device("cpu")
    small = t.Trainer(TrainJob("baseline", None, None, profile="small"), DistInfo(), cpu)
    assert small.plateau_signal(val) == pytest.approx(0.2)  # small: 1 - per-sample Dice
    paper = t.Trainer(TrainJob("baseline", None, None, profile="paper"), DistInfo(), cpu)
    assert paper.plateau_signal(val) == 0.7  # the paper: the validation loss
