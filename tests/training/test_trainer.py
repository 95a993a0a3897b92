"""Trainer: resume reaches the same weights, reruns skip, DDP with gloo on two processes."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch

from e2net_eval.errors import InputError
from e2net_eval.runtime.weights import weights_digest
from e2net_eval.training.trainer import train

TINY = dict(
    profile="small",
    batch_size=2,
    steps_per_epoch=3,
    max_val_samples=8,
    device="cpu",
    progress=False,
)


def _last(run, config="stage1"):
    return torch.load(run / config / "checkpoint_last.pt", map_location="cpu", weights_only=False)


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_reaches_the_same_weights(lits6_phantom, tmp_path):
    """5 steps straight == 2 steps + resume to 5 == (epoch 1 ends at 3) killed + resume."""
    straight = tmp_path / "straight"
    done = train("stage1", lits6_phantom, straight, max_steps=5, **TINY)
    assert done["reason"] == "max_steps" and done["steps"] == 5 and done["epochs"] == 1

    halves = tmp_path / "halves"
    first = train("stage1", lits6_phantom, halves, max_steps=2, **TINY)
    assert first["steps"] == 2
    assert train("stage1", lits6_phantom, halves, max_steps=2, **TINY) == first  # done: skipped
    second = train("stage1", lits6_phantom, halves, max_steps=5, resume=True, **TINY)
    assert second["steps"] == 5

    killed = tmp_path / "killed"
    train("stage1", lits6_phantom, killed, max_steps=3, **TINY)  # stops at the epoch end
    (killed / "stage1" / "done.json").unlink()  # as if killed after the epoch checkpoint
    with pytest.raises(InputError, match="--resume"):
        train("stage1", lits6_phantom, killed, max_steps=5, **TINY)
    train("stage1", lits6_phantom, killed, max_steps=5, resume=True, **TINY)

    ref = _last(straight)
    assert ref["step"] == 5 and ref["epoch"] == 1 and ref["step_in_epoch"] == 2
    for other in (halves, killed):
        ck = _last(other)
        _assert_same_state(ref["model"], ck["model"])
        for a, b in zip(
            ref["optimizer"]["state"].values(), ck["optimizer"]["state"].values(), strict=True
        ):
            assert torch.equal(a["momentum_buffer"], b["momentum_buffer"])
        assert ck["plateau"] == ref["plateau"]
        assert (
            json.loads((other / "stage1" / "done.json").read_text())["weights_sha256"]
            == done["weights_sha256"]
        )
    # the weights moved, and one metrics line per epoch end or stop
    lines = [
        json.loads(x) for x in (straight / "stage1" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in lines] == [3, 5] and lines[0]["epoch_complete"]
    assert (straight / "stage1" / "best.pt").is_file() and (straight / "split.json").is_file()


def test_seed_changes_weights_and_force_restarts(lits6_phantom, tmp_path):
    a = train("stage1", lits6_phantom, tmp_path / "a", max_steps=1, seed=1, **TINY)
    b = train("stage1", lits6_phantom, tmp_path / "b", max_steps=1, seed=2, **TINY)
    assert a["weights_sha256"] != b["weights_sha256"]
    again = train("stage1", lits6_phantom, tmp_path / "a", max_steps=1, seed=1, force=True, **TINY)
    assert again["weights_sha256"] == a["weights_sha256"]  # deterministic on the CPU
    lines = (tmp_path / "a" / "stage1" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1  # --force started the log over too
    workers = train(
        "stage1", lits6_phantom, tmp_path / "w", max_steps=1, seed=1, num_workers=2, **TINY
    )
    assert workers["weights_sha256"] == a["weights_sha256"]  # loader processes change nothing


def test_bad_inputs(lits6_phantom, tmp_path):
    with pytest.raises(InputError, match="unknown configuration"):
        train("nope", lits6_phantom, tmp_path / "r", max_steps=1, **TINY)
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["0", "1"], "validation": ["99"]}))
    with pytest.raises(InputError, match="not in the dataset"):
        train("stage1", lits6_phantom, tmp_path / "r", split=split, max_steps=1, **TINY)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, root, run, out):
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    done = train("stage1", root, run, max_steps=4, **{**TINY, "batch_size": 4})
    with open(os.path.join(out, f"rank{rank}.json"), "w") as fh:
        json.dump(done, fh)


def test_ddp_gloo_two_processes(lits6_phantom, tmp_path):
    import torch.multiprocessing as mp

    run = tmp_path / "ddp"
    mp.spawn(
        _ddp_worker,
        args=(2, _free_port(), str(lits6_phantom), str(run), str(tmp_path)),
        nprocs=2,
        join=True,
    )
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["world_size"] == 2 and r0["steps"] == 4
    assert r0["weights_sha256"] == r1["weights_sha256"]  # replicas stayed in sync
    import reference_models

    model = reference_models.create_model("stage1", profile="small")
    model.load_state_dict(_last(run)["model"])
    assert weights_digest(model) == r0["weights_sha256"]  # rank 0 wrote its weights
    lines = (run / "stage1" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [3, 4]  # written once, by rank 0


def test_context_slices_and_settings_guard(lits6_phantom, tmp_path):
    """context=3 trains and predicts with 3 input channels; resume refuses other settings."""
    from e2net_eval.data import open_dataset
    from e2net_eval.inference.predictor import predict_volume
    from e2net_eval.runtime.weights import load_trained

    run = tmp_path / "ctx"
    train("stage1", lits6_phantom, run, max_steps=1, context=3, **TINY)
    model = load_trained(run, "stage1", torch.device("cpu"))
    assert model.in_channels == 3 and model.config.context == 3
    case = open_dataset(lits6_phantom).load("0")
    assert predict_volume(case.image, case.affine, model).shape == case.image.shape
    (run / "stage1" / "done.json").unlink()
    with pytest.raises(InputError, match="batch_size"):
        train(
            "stage1",
            lits6_phantom,
            run,
            max_steps=2,
            context=3,
            resume=True,
            **{**TINY, "batch_size": 4},
        )
    with pytest.raises(InputError, match="different network"):
        train("stage1", lits6_phantom, run, max_steps=2, resume=True, **TINY)


def test_backbone_weights_load_into_every_encoder(tmp_path):
    import reference_models
    from e2net_eval.runtime.weights import load_backbone

    torch.manual_seed(1)
    source = reference_models.create_model("stage1", profile="small")
    path = tmp_path / "res2net.pt"
    torch.save(source.encoders()[0].state_dict(), path)
    torch.manual_seed(2)
    target = reference_models.create_model("dist_dcff", profile="small")
    assert load_backbone(target, path) == 2
    for enc in target.encoders():
        _assert_same_state(enc.state_dict(), source.encoders()[0].state_dict())
    bad = tmp_path / "bad.pt"
    torch.save({"nothing": torch.zeros(1)}, bad)
    with pytest.raises(InputError, match="bad.pt"):
        load_backbone(target, bad)


def test_split_file_with_exclusions(lits6_phantom, tmp_path):
    """A leak-free split (cases left out) is used as given: excluded cases are never read."""
    from e2net_eval.data import make_split, open_dataset
    from e2net_eval.util.jsonio import dump_json

    split = make_split(open_dataset(lits6_phantom).case_ids(), 0, exclude=["5"])
    path = tmp_path / "split.json"
    dump_json(path, split)
    run = tmp_path / "run"
    train("stage1", lits6_phantom, run, split=path, max_steps=1, **TINY)
    assert json.loads((run / "split.json").read_text()) == split
    cached = {p.name for p in next((run / "cache").iterdir()).iterdir()}
    assert cached == set(split["train"]) | set(split["validation"]) and "5" not in cached
    other = tmp_path / "other.json"
    dump_json(other, make_split(open_dataset(lits6_phantom).case_ids(), 1))
    with pytest.raises(InputError, match="different split"):
        train("stage1", lits6_phantom, run, split=other, max_steps=1, **TINY)
