"""Two-stage prediction: orientation, output geometry, and train -> predict -> evaluate."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from e2net_eval.errors import InputError
from e2net_eval.inference.predictor import largest_component, predict_volume

STEPS = ["--max-steps", "2", "--batch-size", "2", "--steps-per-epoch", "2", "--no-progress"]


def _flip_case(image, label, affine, axes=(0, 1)):
    """Flip arrays along `axes` and change the affine so the world stays where it was."""
    flip = np.eye(4)
    for a in axes:
        flip[a, a] = -1
        flip[a, 3] = image.shape[a] - 1
    return np.flip(image, axes).copy(), np.flip(label, axes).copy(), affine @ flip


def _write_lits(root, cases):
    root.mkdir(parents=True)
    for cid, (image, label, affine) in cases.items():
        nib.save(nib.Nifti1Image(image, affine), str(root / f"volume-{cid}.nii"))
        nib.save(
            nib.Nifti1Image(label.astype(np.uint8), affine), str(root / f"segmentation-{cid}.nii")
        )


class _Lit(torch.nn.Module):
    """A fresh network whose seg logits are lifted by the image, so its maps are not empty."""

    def __init__(self, net):
        super().__init__()
        self.net, self.config, self.in_channels = net, net.config, net.in_channels

    def forward(self, x):
        out = self.net(x)
        bias = torch.tensor([1.0, -1.0])[: out["seg"].shape[1]].view(1, -1, 1, 1)
        return {**out, "seg": out["seg"] + 4 * x[:, :1] + bias}


def _models():
    import reference_models

    torch.manual_seed(0)
    return (
        _Lit(reference_models.create_model("stage1", profile="small").eval()),
        _Lit(reference_models.create_model("dist", profile="small").eval()),
    )


def test_flipped_case_prediction_aligns_voxelwise(lits6_phantom):
    from e2net_eval.data import open_dataset

    case = open_dataset(lits6_phantom).load(open_dataset(lits6_phantom).case_ids()[0])
    s1, s2 = _models()
    pred = predict_volume(case.image, case.affine, s1, s2)
    assert pred.dtype == np.uint8 and pred.shape == case.image.shape
    assert set(np.unique(pred)) == {0, 1, 2}  # a non-trivial map, so the comparison means something
    for axes in [(0,), (0, 1), (2,)]:
        image, _, affine = _flip_case(case.image, case.label, case.affine, axes)
        flipped = predict_volume(image, affine, s1, s2)
        assert np.array_equal(np.flip(flipped, axes), pred), axes


def test_stage1_only_and_largest_component(lits6_phantom):
    from e2net_eval.data import open_dataset

    ds = open_dataset(lits6_phantom)
    case = ds.load(ds.case_ids()[1])
    s1, _ = _models()
    liver = predict_volume(case.image, case.affine, s1)
    assert set(np.unique(liver)) <= {0, 1}
    kept = predict_volume(case.image, case.affine, s1, keep_largest=True)
    assert kept.sum() <= liver.sum() and np.all(kept <= liver)
    m = np.zeros((5, 5, 5), bool)
    m[0:2, 0:2, 0:2] = True
    m[4, 4, 4] = True
    assert int(largest_component(torch.from_numpy(m)).sum()) == 8


def _evaluate(run_cli, pred, ref, out):
    code, _, err = run_cli("evaluate", pred, ref, "-o", out, "--no-progress")
    assert code == 0, err
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def trained_run(lits6_phantom, tmp_path_factory):
    """A run with stage1 and dist trained for two steps each, from the command line."""
    from e2net_eval.cli import main

    run = tmp_path_factory.mktemp("run") / "run"
    for config in ("stage1", "dist"):
        with pytest.raises(SystemExit) as exc:
            main(
                [
                    "train",
                    config,
                    "--data",
                    str(lits6_phantom),
                    "-o",
                    str(run),
                    "--device",
                    "cpu",
                    *STEPS,
                ]
            )
        assert exc.value.code == 0
    return run


def test_train_predict_evaluate_cli(run_cli, lits6_phantom, trained_run, tmp_path):
    """stage1 + one stage-2 config, a few steps each, then predict and evaluate."""
    run = trained_run
    for config in ("stage1", "dist"):
        assert (run / config / "done.json").is_file() and (run / config / "best.pt").is_file()
    code, out, _ = run_cli("train", "stage1", "--data", lits6_phantom, "-o", run, *STEPS)
    assert code == 0 and "max_steps" in out  # done: skipped, reported

    pred = tmp_path / "pred"
    code, _, err = run_cli(
        "predict", run, "--data", lits6_phantom, "-o", pred, "--device", "cpu", "--no-progress"
    )
    assert code == 0, err
    meta = json.loads((pred / "predict.json").read_text())
    assert meta["stage2"] == "dist"  # the most complete stage-2 config in the run
    ids = sorted(p.name for p in pred.glob("*.nii.gz"))
    assert ids == sorted(f"{i}.nii.gz" for i in range(6))
    for i in range(6):
        p, r = (
            nib.load(str(pred / f"{i}.nii.gz")),
            nib.load(str(lits6_phantom / f"segmentation-{i}.nii")),
        )
        assert p.get_data_dtype() == np.uint8 and p.shape == r.shape
        assert np.allclose(p.affine, r.affine)
    liver_only = tmp_path / "pred1"
    code, _, err = run_cli(
        "predict",
        run,
        "--data",
        lits6_phantom,
        "-o",
        liver_only,
        "--config",
        "stage1",
        "--cases",
        "0",
        "--no-progress",
    )
    assert code == 0, err
    assert sorted(p.name for p in liver_only.glob("*.nii.gz")) == ["0.nii.gz"]
    assert set(np.unique(np.asarray(nib.load(str(liver_only / "0.nii.gz")).dataobj))) <= {0, 1}

    code, _, err = run_cli(
        "predict", run, "--data", lits6_phantom, "-o", tmp_path / "x", "--config", "edge"
    )
    assert code == 2 and "not trained" in err
    code, _, err = run_cli("predict", tmp_path, "--data", lits6_phantom, "-o", tmp_path / "x")
    assert code == 2 and "stage1" in err
    code, _, err = run_cli(
        "predict", run, "--data", lits6_phantom, "-o", tmp_path / "x", "--cases", "77"
    )
    assert code == 2 and "77" in err

    summary = _evaluate(run_cli, pred, lits6_phantom, tmp_path / "eval")  # last: skips if absent
    assert summary["n_cases"] == 6 and "liver" in summary["regions"]


def test_predict_flipped_and_dicom_layouts(run_cli, lits6_phantom, trained_run, tmp_path):
    """A flipped copy lands on its own voxels; 3DIRCADb DICOM cases get the reader's grid."""
    from e2net_eval.data import open_dataset, write_phantom
    from e2net_eval.data.phantom import PhantomSpec

    case = open_dataset(lits6_phantom).load("0")
    flipped_root = tmp_path / "flipped"
    _write_lits(
        flipped_root,
        {
            "0": (case.image, case.label, case.affine),
            "1": _flip_case(case.image, case.label, case.affine),
        },
    )
    fpred = tmp_path / "fpred"
    code, _, err = run_cli(
        "predict", trained_run, "--data", flipped_root, "-o", fpred, "--no-progress"
    )
    assert code == 0, err
    a = nib.load(str(fpred / "0.nii.gz"))
    b = nib.load(str(fpred / "1.nii.gz"))
    assert np.array_equal(np.flip(np.asarray(b.dataobj), (0, 1)), np.asarray(a.dataobj))
    assert np.allclose(b.affine, nib.load(str(flipped_root / "segmentation-1.nii")).affine)

    ircadb = tmp_path / "ircadb"
    write_phantom(ircadb, PhantomSpec("ircadb", indices=[0, 3]))
    ipred = tmp_path / "ipred"
    code, _, err = run_cli("predict", trained_run, "--data", ircadb, "-o", ipred, "--no-progress")
    assert code == 0, err
    ds = open_dataset(ircadb)
    assert sorted(p.name for p in ipred.glob("*.nii.gz")) == sorted(
        f"{c}.nii.gz" for c in ds.case_ids()
    )
    for cid in ds.case_ids():
        ref = ds.load(cid, image=False)
        out = nib.load(str(ipred / f"{cid}.nii.gz"))
        assert out.shape == ref.label.shape and np.allclose(out.affine, ref.affine)
    # patient 1 of the DICOM set is phantom case 0: in canonical orientation the same labels
    from e2net_eval.runtime.orientation import Orientation

    dicom_first = ds.load(ds.case_ids()[0], image=False)
    lits = open_dataset(lits6_phantom).load("0", image=False)
    canon = Orientation.from_affine(lits.affine).slices
    canon_dicom = Orientation.from_affine(dicom_first.affine).slices
    assert np.array_equal(canon_dicom(dicom_first.label), canon(lits.label))
    out_dicom = np.asarray(nib.load(str(ipred / f"{ds.case_ids()[0]}.nii.gz")).dataobj)
    assert np.array_equal(canon_dicom(out_dicom), canon(np.asarray(a.dataobj)))


@pytest.mark.slow
def test_every_configuration_trains_predicts_and_evaluates(run_cli, lits6_phantom, tmp_path):
    import reference_models

    run = tmp_path / "run"
    for config in reference_models.list_models():
        code, _, err = run_cli("train", config, "--data", lits6_phantom, "-o", run, *STEPS)
        assert code == 0, err
        pred = tmp_path / f"pred-{config}"
        code, _, err = run_cli(
            "predict", run, "--data", lits6_phantom, "-o", pred, "--config", config, "--no-progress"
        )
        assert code == 0, err
        summary = _evaluate(run_cli, pred, lits6_phantom, tmp_path / f"eval-{config}")
        assert summary["n_cases"] == 6
        labels = np.unique(np.asarray(nib.load(str(pred / "0.nii.gz")).dataobj))
        assert set(labels) <= ({0, 1} if config == "stage1" else {0, 1, 2})


def test_torch_window_is_bit_identical_to_the_data_layer():
    from e2net_eval.data import window_hu
    from e2net_eval.inference.predictor import window_tensor

    ints = np.arange(-3100, 3100, dtype=np.int16)
    floats = np.random.default_rng(0).uniform(-300, 400, 50_000).astype(np.float32)
    for x in (ints, floats, floats.astype(np.float64)):
        before = x.copy()
        assert np.array_equal(window_tensor(torch.from_numpy(x)).numpy(), window_hu(x))
        assert np.array_equal(x, before)  # the input is not modified


class _UnsupervisedBand(torch.nn.Module):
    """Stands in for a stage-1 network trained on ``crop x crop`` windows.

    Like the reference networks it works on its input padded at the bottom/right to a
    multiple of 32 and crops the logits back; training put a loss only on the first
    ``crop`` rows and columns of that grid, so this one answers "liver" in the rest (the
    band a trained network leaves arbitrary) and "background" everywhere else.
    """

    def __init__(self, crop: int):
        super().__init__()
        self.config = type("Config", (), {"input_size": crop})()
        self.in_channels = 1
        self.band = -(-crop // 32) * 32 - crop
        self.sides: list[tuple[int, int]] = []

    def forward(self, x):
        h, w = x.shape[-2:]
        self.sides.append((h, w))
        gh, gw = -(-h // 32) * 32, -(-w // 32) * 32
        logits = torch.full((x.shape[0], 1, gh, gw), -10.0)
        if self.band:
            logits[..., gh - self.band :, :] = 10.0
            logits[..., :, gw - self.band :] = 10.0
        return {"seg": logits[..., :h, :w]}


@pytest.mark.parametrize(("side", "crop", "fed"), [(128, 112, 144), (96, 64, 96)])
def test_stage1_never_keeps_pixels_training_left_unsupervised(side, crop, fed):
    # a 128x128 slice fed as is to a network trained on 112 crops put its last 16 rows and
    # columns in the grid band no loss ever reached: a false liver band (phantom ablation)
    model = _UnsupervisedBand(crop)
    hu = np.full((side, side, 5), -1000, dtype=np.int16)
    pred = predict_volume(hu, np.eye(4), model)
    assert not pred.any()
    assert {s for s in model.sides} == {(fed, fed)}


def test_stage2_from_saved_stage1_predictions_equals_running_stage1(
    trained_run, lits6_phantom, tmp_path
):
    """The ablation predicts stage 1 once per set and lets every stage-2 configuration reuse
    it: the result must be the same labels as running stage 1 again (flipped cases too)."""
    from e2net_eval.inference.predictor import predict

    ids = ["0", "3"]
    s1 = predict(
        trained_run,
        lits6_phantom,
        tmp_path / "s1",
        config="stage1",
        case_ids=ids,
        device="cpu",
        progress=False,
    )
    direct = predict(
        trained_run,
        lits6_phantom,
        tmp_path / "direct",
        config="dist",
        case_ids=ids,
        device="cpu",
        progress=False,
    )
    reused = predict(
        trained_run,
        lits6_phantom,
        tmp_path / "reused",
        config="dist",
        case_ids=ids,
        device="cpu",
        progress=False,
        stage1_dir=tmp_path / "s1",
    )
    assert len(s1) == len(direct) == len(reused) == 2
    for a, b in zip(direct, reused, strict=True):
        assert np.array_equal(
            np.asarray(nib.load(str(a)).dataobj), np.asarray(nib.load(str(b)).dataobj)
        )
    meta = json.loads((tmp_path / "reused" / "predict.json").read_text())
    assert meta["stage1_from"] == str(tmp_path / "s1")
    from e2net_eval.cli import main

    with pytest.raises(SystemExit) as exc:  # the same from the command line
        main(
            [
                "predict",
                str(trained_run),
                "--data",
                str(lits6_phantom),
                "-o",
                str(tmp_path / "cli"),
                "--config",
                "dist",
                "--cases",
                "3",
                "--stage1-dir",
                str(tmp_path / "s1"),
                "--no-progress",
            ]
        )
    assert exc.value.code == 0
    assert np.array_equal(
        np.asarray(nib.load(str(tmp_path / "cli" / "3.nii.gz")).dataobj),
        np.asarray(nib.load(str(direct[1])).dataobj),
    )
    (tmp_path / "s1" / "3.nii.gz").unlink()
    with pytest.raises(InputError, match="stage-1 prediction missing"):
        predict(
            trained_run,
            lits6_phantom,
            tmp_path / "again",
            config="dist",
            case_ids=ids,
            device="cpu",
            progress=False,
            stage1_dir=tmp_path / "s1",
        )
