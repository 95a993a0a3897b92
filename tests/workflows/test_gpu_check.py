"""`bench gpu` in its dry mode on the CPU (no GPU in the test machine): every part runs the
code the GPU run runs, at a size the CPU does in seconds, and the summary says what ran."""

from __future__ import annotations

import json

import pytest
import torch

from e2net_eval.workflows import gpu_check
from reference_models import create_model, list_models, stage1_name


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


def test_a_wrong_gradient_on_the_device_fails_the_check_and_is_named(monkeypatch):
    real = gpu_check._outputs_and_grads
    wrong = f"grad {next(n for n, _ in create_model(stage1_name(), profile='small').named_parameters())}"

    def one_percent_off(name, profile, where, dtype=torch.float32, channels_last=False):
        found = real(name, profile, where, dtype, channels_last)
        if channels_last and name == stage1_name():  # the "device" run of stage 1
            found[wrong] = found[wrong] * 1.01
        return found

    monkeypatch.setattr(gpu_check, "_outputs_and_grads", one_percent_off)
    part = gpu_check._agreement(torch.device("cpu"), "small")
    stage1, full = part["rows"]
    assert not part["ok"] and not stage1["ok"] and full["ok"]
    assert stage1["worst_tensor"] == wrong and 9 < stage1["worst_over_allowed"] < 11


def test_the_allowance_is_each_tensors_cpu_noise_or_the_median_noise_at_least():
    cpu = {"a": 1e-6, "b": 1e-2, "c": 2e-3, "d": 3e-3}  # median 2.5e-3
    row = gpu_check._agreement_row("x", cpu, {"a": 0.9e-2, "b": 3.9e-2, "c": 0.0, "d": 0.0})
    assert (
        row["ok"]
        and row["worst_tensor"] == "b"
        and row["worst_over_allowed"] == pytest.approx(3.9e-2 / 4e-2)
    )
    row = gpu_check._agreement_row("x", cpu, {"a": 1.1e-2, "b": 0.0, "c": 0.0, "d": 0.0})
    assert not row["ok"] and row["worst_tensor"] == "a"  # 1.1e-2 > 4 x median 2.5e-3
    quiet = {"a": 1e-7, "b": 1e-7}  # a quiet model: the floor TOLERANCE holds
    assert not gpu_check._agreement_row("x", quiet, {"a": 1.1e-3, "b": 0.0})["ok"]
    assert gpu_check._agreement_row("x", quiet, {"a": 0.9e-3, "b": 0.0})["ok"]


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
