"""`bench gpu` in its dry mode on the CPU (no GPU in the test machine): every part runs the
code the GPU run runs, at a size the CPU does in seconds, and the summary says what ran."""

from __future__ import annotations

import json

import torch

from e2net_eval.workflows import gpu_check
from reference_models import list_models


def test_dry_run_writes_one_summary_of_every_part(tmp_path, run_cli):
    out = tmp_path / "check"
    code, stdout, err = run_cli(
        "bench", "gpu", "-o", out, "--device", "cpu", "--steps", "2", "--ddp-steps", "2"
    )
    assert code == 0, err
    summary = json.loads((out / "gpu_check.json").read_text())
    assert summary["ok"] and summary["dry_run"] and summary["profile"] == "small"
    train = summary["train"]
    assert [r["config"] for r in train["rows"]] == list_models()
    for row in train["rows"]:
        assert row["batch_size"] == 2 and row["seconds_per_step"] > 0 and row["ok"]
    case = summary["inference"]["case"]
    assert case["slices"] == 2 and case["total_seconds_upper_bound"] > 0
    ddp = summary["ddp"]
    assert ddp["backend"] == "gloo" and ddp["world_size"] == 2
    assert ddp["weights_equal_across_ranks"] and ddp["ok"]
    assert {r["config"] for r in summary["agreement"]["rows"]} == {"stage1", list_models()[-1]}
    for part in ("train", "inference", "ddp", "agreement"):
        assert summary[part]["seconds"] > 0
    text = (out / "gpu_check.md").read_text()
    assert "overall: OK" in text and "DDP (gloo, 2 processes)" in text and text in stdout


def test_a_disagreement_beyond_the_tolerance_fails_the_check(monkeypatch):
    monkeypatch.setattr(gpu_check, "TOLERANCE", -1.0)  # any difference, even 0, is too much
    part = gpu_check._agreement(torch.device("cpu"), "small")
    assert not part["ok"] and all(not r["ok"] for r in part["rows"])


def test_a_failed_part_is_reported_and_the_command_exits_4(tmp_path, run_cli, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("NCCL error: unhandled system error")

    for name in ("_train", "_inference", "_agreement"):
        monkeypatch.setattr(gpu_check, name, lambda *a, **k: {"ok": True})
    monkeypatch.setattr(gpu_check, "_ddp", broken)
    monkeypatch.setattr(gpu_check, "machine", lambda dev: {"device": "cpu", "torch": "x"})
    out = tmp_path / "check"
    code, _, err = run_cli("bench", "gpu", "-o", out, "--device", "cpu", "--steps", "1")
    assert code == 4, err
    summary = json.loads((out / "gpu_check.json").read_text())
    assert not summary["ok"] and summary["ddp"]["error"].startswith("RuntimeError: NCCL error")
    assert "ddp: FAILED RuntimeError: NCCL error" in (out / "gpu_check.md").read_text()
