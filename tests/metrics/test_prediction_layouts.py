"""Predictions as other tools write them: MONAI SaveImage (written here by MONAI itself),
nnU-Net's <case>.nii.gz, and --pred-pattern; an ambiguous match is one error line naming
both files."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import LoadImage, SaveImage

from e2net_eval.data import write_phantom
from e2net_eval.data.phantom import PhantomSpec
from e2net_eval.errors import InputError
from e2net_eval.metrics import evaluate
from e2net_eval.metrics.predictions import PredictionFinder, candidates, check_pattern

N = 2


@pytest.fixture(scope="module")
def lits(tmp_path_factory):
    root = tmp_path_factory.mktemp("ref") / "lits"
    write_phantom(root, PhantomSpec("lits", N, seed=9, size=32, slices=(8, 10)))
    return root


def _label(lits, i):
    img = nib.load(str(lits / f"segmentation-{i}.nii"), mmap=False)
    return np.asarray(img.dataobj).astype(np.uint8), img.affine


def _perturbed(lits, i):
    lab, affine = _label(lits, i)
    return np.roll(lab, 1, axis=1), affine


def _reference_scores(lits, tmp_path):
    """The scores of the perturbed predictions written under our own names."""
    plain = tmp_path / "plain"
    plain.mkdir()
    for i in range(N):
        pred, affine = _perturbed(lits, i)
        nib.save(nib.Nifti1Image(pred, affine), str(plain / f"{i}.nii.gz"))
    return evaluate(plain, lits, tmp_path / "plain_scores", progress=False)


@pytest.mark.parametrize("postfix", ["seg", None])  # None: SaveImage's default ("trans")
def test_monai_saveimage_layout_scores_without_renaming(lits, tmp_path, postfix):
    """MONAI names the output after the input image: volume-N/volume-N_<postfix>.nii.gz."""
    out = tmp_path / "monai"
    load = LoadImage(image_only=True, ensure_channel_first=True, reader="NibabelReader")
    kw = {} if postfix is None else {"output_postfix": postfix}
    save = SaveImage(output_dir=str(out), print_log=False, **kw)
    for i in range(N):
        image = load(str(lits / f"volume-{i}.nii"))
        pred = image.clone()
        pred[0] = torch.as_tensor(_perturbed(lits, i)[0].astype(np.float32))
        save(pred)
    name = postfix or "trans"
    assert (out / "volume-0" / f"volume-0_{name}.nii.gz").is_file()
    summary = evaluate(out, lits, tmp_path / "scores", progress=False)
    expected = _reference_scores(lits, tmp_path)
    assert summary["regions"] == expected["regions"]
    assert summary["unmatched_prediction_files"] == []


def test_nnunet_case_names_against_labels_tr(lits, tmp_path):
    labels = tmp_path / "Dataset500_Liver" / "labelsTr"
    labels.mkdir(parents=True)
    preds = tmp_path / "nnunet_pred"
    preds.mkdir()
    for i, case in enumerate(("LIVER_001", "LIVER_002")):
        shutil.copy(lits / f"segmentation-{i}.nii", labels / f"{case}.nii")
        pred, affine = _perturbed(lits, i)
        nib.save(nib.Nifti1Image(pred, affine), str(preds / f"{case}.nii.gz"))
    for extra in ("plans.json", "dataset.json", "LIVER_001.npz"):  # what nnU-Net writes too
        (preds / extra).write_text("{}")
    summary = evaluate(preds, labels.parent, tmp_path / "scores", progress=False)
    assert [r["case"] for r in summary["metric_per_case"]] == ["LIVER_001", "LIVER_002"]
    assert summary["unmatched_prediction_files"] == []


def test_pred_pattern_cli(lits, tmp_path, run_cli):
    preds = tmp_path / "pred"
    for i in range(N):
        (preds / f"run_{i:03d}").mkdir(parents=True)
        pred, affine = _perturbed(lits, i)
        nib.save(nib.Nifti1Image(pred, affine), str(preds / f"run_{i:03d}" / "mask.nii.gz"))
    code, _, err = run_cli("evaluate", preds, lits, "-o", tmp_path / "o", "--no-progress")
    assert code == 2 and "no prediction file for 2 case(s)" in err and "--pred-pattern" in err
    code, _, err = run_cli(
        "evaluate",
        preds,
        lits,
        "-o",
        tmp_path / "o",
        "--no-progress",
        "--pred-pattern",
        "run_{id:0>3}/mask.nii.gz",
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["meta"]["prediction_pattern"] == "run_{id:0>3}/mask.nii.gz"
    assert summary["regions"] == _reference_scores(lits, tmp_path)["regions"]


def test_ambiguous_match_is_one_line_naming_both(lits, tmp_path, run_cli):
    preds = tmp_path / "pred"
    (preds / "0").mkdir(parents=True)
    for i in range(N):
        pred, affine = _perturbed(lits, i)
        nib.save(nib.Nifti1Image(pred, affine), str(preds / f"{i}.nii.gz"))
    shutil.copy(preds / "0.nii.gz", preds / "0" / "0_seg.nii.gz")
    out = tmp_path / "o"
    code, stdout, err = run_cli("evaluate", preds, lits, "-o", out, "--no-progress")
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: case 0:")
    assert "0.nii.gz" in lines[0] and "0/0_seg.nii.gz" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "pattern", ["{case}.nii.gz", "{id}.png", "/abs/{id}.nii", "../{id}.nii", "{id", "x.nii"]
)
def test_bad_patterns(pattern, lits, tmp_path, run_cli):
    with pytest.raises(InputError):
        check_pattern(pattern)
    code, _, err = run_cli("evaluate", lits, lits, "-o", tmp_path / "o", "--pred-pattern", pattern)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--pred-pattern" in err


def test_finder_lists_unmatched_nested_files(tmp_path):
    (tmp_path / "3").mkdir()
    (tmp_path / "3" / "3_seg.nii.gz").write_bytes(b"")
    (tmp_path / "3" / "3_image.nii.gz").write_bytes(b"")
    (tmp_path / "7.nii").write_bytes(b"")
    (tmp_path / ".7.tmp.nii").write_bytes(b"")  # hidden (a half-written file): ignored
    finder = PredictionFinder(tmp_path)
    assert finder.find("3") == tmp_path / "3" / "3_seg.nii.gz"
    assert finder.unmatched(["3"]) == ["3/3_image.nii.gz", "7.nii"]
    assert "volume-3/volume-3_trans.nii.gz" in candidates("3")
