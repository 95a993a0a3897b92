"""`bench train` and `bench inference`: counted work, measured time, matmul throughput."""

from __future__ import annotations

import json

from e2net_eval.runtime.timing import count_macs


def test_count_macs_of_a_known_convolution():
    import torch

    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    # every output pixel: 8 channels x 3 x 3 x 3 multiply-adds
    assert count_macs(lambda: conv(torch.zeros(1, 3, 10, 10))) == 8 * 27 * 100


def test_bench_commands(run_cli, tmp_path):
    code, out, err = run_cli(
        "bench",
        "inference",
        "--size",
        "64",
        "--slices",
        "2",
        "--repeats",
        "1",
        "--config",
        "dist",
        "--device",
        "cpu",
        "--json",
        tmp_path / "inf.json",
    )
    assert code == 0, err
    inf = json.loads((tmp_path / "inf.json").read_text())
    assert [r["model"] for r in inf["rows"]] == ["stage1", "dist"]
    assert all(r["macs_per_slice"] > 0 and r["seconds_per_slice"] > 0 for r in inf["rows"])
    assert inf["machine"]["matmul_gflops_fp32"] > 0 and inf["case"]["slices"] == 2
    assert "matmul fp32" in out

    code, out, err = run_cli(
        "bench",
        "train",
        "--config",
        "stage1",
        "--steps",
        "1",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--json",
        tmp_path / "train.json",
    )
    assert code == 0, err
    tr = json.loads((tmp_path / "train.json").read_text())
    row = tr["rows"][0]
    assert row["config"] == "stage1" and row["batch_size"] == 2
    # forward + backward is roughly three forwards
    fwd = count_macs(lambda: _small_forward(row["input_size"]))
    assert 2 * fwd <= row["macs_per_sample_fwd_bwd"] <= 4 * fwd


def _small_forward(size):
    import torch

    import reference_models

    torch.manual_seed(0)
    model = reference_models.create_model("stage1", profile="small")
    with torch.no_grad():
        model(torch.zeros(1, 1, size, size))
