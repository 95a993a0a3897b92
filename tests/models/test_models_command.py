"""`e2net-eval models`: the listing, its JSON, and checkpoint checks."""

from __future__ import annotations

import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from reference_models import create_model, list_models
from reference_models.complexity import count_macs


def test_models_lists_all_configurations(run_cli, tmp_path):
    out_json = tmp_path / "models.json"
    code, out, err = run_cli("models", "--json", out_json)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "profile small, context 1"
    assert [line.split()[0] for line in lines[2:]] == list_models()
    data = json.loads(out_json.read_text())
    assert data["profile"] == "small" and data["context"] == 1
    rows = {r["name"]: r for r in data["models"]}
    # counted independently of reference_models.complexity: every parameter tensor's size,
    # and torch's own FLOP counter (2 FLOPs per multiply-accumulate of convs and matmuls)
    model = create_model("dist_dcff", "small").eval()
    assert rows["dist_dcff"]["params"] == sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as flops, torch.no_grad():
        model(torch.zeros(1, model.in_channels, 64, 64))
    assert 2 * rows["dist_dcff"]["macs"] == flops.get_total_flops()
    assert rows["dist_dcff"]["outputs"] == ["seg", "s1", "edge"]
    assert rows["stage1"]["input_size"] == 112 and rows["baseline"]["input_size"] == 64
    # The edge branch doubles the network; DCFF adds to it.
    assert rows["edge"]["params"] > 1.9 * rows["baseline"]["params"]
    assert rows["dist_dcff"]["macs"] > rows["dist"]["macs"] > rows["baseline"]["macs"]


def test_models_paper_profile_counts(run_cli, tmp_path):
    out_json = tmp_path / "paper.json"
    code, out, err = run_cli("models", "--profile", "paper", "--size", "224", "--json", out_json)
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out_json.read_text())["models"]}
    # One-channel Res2Net-50 encoder: 23.65 M minus 2 x 64 x 7 x 7 stem weights.
    assert rows["stage1"]["encoder_params"] == 23_650_120 - 2 * 64 * 49
    assert rows["dist_dcff"]["encoder_params"] == 2 * rows["stage1"]["encoder_params"]
    assert all(r["input_size"] == 224 for r in rows.values())


def test_macs_scale_with_context_only_in_the_stem():
    one = count_macs(create_model("stage1", "small"), 64)
    three = count_macs(create_model("stage1", "small", context=3), 64)
    stem = 32 * 32 * 16 * 7 * 7  # (H/2 x W/2 outputs) x 16 kernels x 7 x 7 per input channel
    assert three - one == 2 * stem


def test_models_rejects_bad_backbone_weights(run_cli, tmp_path):
    code, _, err = run_cli("models", "--backbone-weights", tmp_path / "none.pth")
    assert code == 2 and "not found" in err and len(err.strip().splitlines()) == 1
    # A checkpoint of another architecture does not load into the small profile.
    ckpt = tmp_path / "other.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, ckpt)
    code, _, err = run_cli("models", "--backbone-weights", ckpt)
    assert code == 2 and "does not match" in err


def test_models_accepts_matching_weights(run_cli, tmp_path):
    ckpt = tmp_path / "small.pth"
    enc = create_model("stage1", "small", context=3).encoder
    torch.save({"state_dict": {f"module.{k}": v for k, v in enc.state_dict().items()}}, ckpt)
    code, out, err = run_cli("models", "--context", "3", "--backbone-weights", ckpt)
    assert code == 0, err
    assert "load into every encoder" in out
