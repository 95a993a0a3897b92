"""`ablation --backbone-weights FILE`: every configuration starts from the file's encoder
weights, the file is part of the run's identity, and the report says which file it was.

A real (tiny) ablation: phantom LiTS cases of 64x64 slices, one training step per
configuration. The encoders are captured right after the trainer built the network (before
the first step), so the check is on the weights training starts from.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from e2net_eval.data import write_phantom
from e2net_eval.data.phantom import PhantomSpec
from e2net_eval.runtime.weights import file_sha256
from e2net_eval.training.trainer import Trainer
from reference_models import create_model, list_models, stage1_name
from reference_models.weights import adapt_first_conv


def res2net_checkpoint(path: Path, profile: str = "small", seed: int = 7) -> dict:
    """A checkpoint in the published Res2Net-50 layout (RGB stem, classifier `fc`, wrapped in
    ``state_dict`` with DataParallel's ``module.`` prefix) for `profile`'s encoder, with
    random values unlike any initialisation; returns the unwrapped tensors."""
    encoder = create_model(stage1_name(), profile=profile).encoder
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for key, value in encoder.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue  # old checkpoints lack them
        shape = list(value.shape)
        if key == "conv1.weight":
            shape[1] = 3  # RGB, as ImageNet checkpoints are
        fresh = torch.rand(shape, generator=gen) + 0.5
        tensors[key] = fresh if "running_var" in key else fresh - 1.0
    tensors["fc.weight"] = torch.rand(1000, 8 * 4 * 16, generator=gen)
    tensors["fc.bias"] = torch.zeros(1000)
    torch.save({"state_dict": {f"module.{k}": v for k, v in tensors.items()}}, path)
    return tensors


@pytest.fixture(scope="module")
def lits(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "lits"
    write_phantom(root, PhantomSpec("lits", 7, seed=0, size=64, slices=(12, 16)))
    return root


def test_every_configuration_starts_from_the_backbone_file(lits, tmp_path, run_cli, monkeypatch):
    ckpt = tmp_path / "res2net50_small.pth"
    tensors = res2net_checkpoint(ckpt)
    captured: dict[str, list[dict[str, torch.Tensor]]] = {}
    build = Trainer.build_network

    def capture(self):
        model = build(self)
        captured[self.job.config] = [
            {k: v.detach().clone() for k, v in enc.state_dict().items()} for enc in model.encoders()
        ]
        return model

    monkeypatch.setattr(Trainer, "build_network", capture)
    run = tmp_path / "run"
    args = ["--lits", lits, "--max-steps", "1", "--workers", "1", "--device", "cpu", "-o", run]
    code, out, err = run_cli("ablation", *args, "--backbone-weights", ckpt)
    assert code == 0, err
    assert sorted(captured) == sorted(list_models())
    for config, encoders in captured.items():
        assert len(encoders) == len(create_model(config).encoders()) >= 1
        for state in encoders:
            for key, value in state.items():
                if key.endswith("num_batches_tracked"):
                    continue
                want = tensors[key]
                if key == "conv1.weight":
                    want = adapt_first_conv(want, value.shape[1])
                assert torch.equal(value, want.to(value.dtype)), (config, key)
    # recorded: the training runs, the run's identity, ablation.json and the report header
    digest = file_sha256(ckpt)
    settings = json.loads((run / "train" / "dist_dcff" / "settings.json").read_text())
    assert settings["backbone_weights"] == {"path": str(ckpt.resolve()), "sha256": digest}
    state = json.loads((run / "ablation_state.json").read_text())
    assert state["args"]["backbone_sha256"] == digest
    assert json.loads((run / "ablation.json").read_text())["backbone_weights"]["sha256"] == digest
    summary = json.loads((run / "eval" / "lits_val" / "dist_dcff" / "summary.json").read_text())
    assert summary["meta"]["ablation"]["backbone_sha256"] == digest
    md = (run / "report" / "report.md").read_text()
    assert f"loaded from {ckpt.resolve()} (SHA-256 {digest})" in md

    # the same file under another name resumes (nothing to do); another file is refused
    captured.clear()
    moved = tmp_path / "moved.pth"
    moved.write_bytes(ckpt.read_bytes())
    code, _, err = run_cli("ablation", *args, "--backbone-weights", moved)
    assert code == 0, err
    assert captured == {}
    other = tmp_path / "other.pth"
    res2net_checkpoint(other, seed=8)
    code, _, err = run_cli("ablation", *args, "--backbone-weights", other)
    assert code == 2 and "backbone_sha256" in err
    code, _, err = run_cli("ablation", *args)
    assert code == 2 and "backbone_sha256" in err


def test_a_backbone_that_does_not_fit_fails_before_any_work(lits, tmp_path, run_cli):
    paper = tmp_path / "paper_layout.pth"
    encoder = create_model(stage1_name(), profile="small").encoder
    state = {k: torch.zeros(1) for k in encoder.state_dict()}  # right names, wrong shapes
    torch.save(state, paper)
    run = tmp_path / "run"
    code, _, err = run_cli("ablation", "--lits", lits, "-o", run, "--backbone-weights", paper)
    assert code == 2 and "paper_layout.pth" in err and "shapes differ" in err
    assert not run.exists()
    code, _, err = run_cli(
        "ablation", "--lits", lits, "-o", run, "--backbone-weights", tmp_path / "missing.pth"
    )
    assert code == 2 and "missing.pth" in err and not run.exists()
