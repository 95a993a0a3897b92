"""Reference labels without images: LiTS segmentation-N alone, a Decathlon/nnU-Net labelsTr
folder (or a dataset root holding only labelsTr), and a plain folder of <id>.nii[.gz]; label
files stored as int16, uint8 or uint16 (as real LiTS files are) all read and score."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from e2net_eval.data import open_dataset, write_phantom
from e2net_eval.data.phantom import PhantomSpec
from e2net_eval.errors import InputError
from e2net_eval.metrics import evaluate

KW = {"seed": 5, "size": 32, "slices": (8, 10)}
N = 3


@pytest.fixture(scope="module")
def lits(tmp_path_factory):
    root = tmp_path_factory.mktemp("ref") / "lits"
    write_phantom(root, PhantomSpec("lits", N, **KW))
    return root


def _resave(src, dst, dtype):
    """Copy a label file, storing its voxels as `dtype` (header and affine kept)."""
    img = nib.load(str(src), mmap=False)
    data = np.asarray(img.dataobj).astype(dtype)
    out = nib.Nifti1Image(data, img.affine, img.header)
    out.header.set_data_dtype(dtype)
    nib.save(out, str(dst))
    assert nib.load(str(dst)).get_data_dtype() == np.dtype(dtype)


def _predictions(lits, out):
    """Deterministically perturbed copies of the reference labels, named <id>.nii.gz."""
    out.mkdir()
    for i in range(N):
        img = nib.load(str(lits / f"segmentation-{i}.nii"), mmap=False)
        pred = np.asarray(img.dataobj).astype(np.uint8)
        pred = np.roll(pred, i + 1, axis=0)
        nib.save(nib.Nifti1Image(pred, img.affine), str(out / f"{i}.nii.gz"))
    return out


def _numbers(summary):
    return json.dumps(
        {k: summary[k] for k in ("regions", "tumour_burden", "detection", "metric_per_case")},
        sort_keys=True,
        default=str,
    )


@pytest.mark.parametrize("dtype", ["int16", "uint8", "uint16"])
def test_label_only_lits_folder_scores_like_the_full_dataset(lits, tmp_path, dtype):
    labels = tmp_path / "labels"
    labels.mkdir()
    for i in range(N):
        _resave(lits / f"segmentation-{i}.nii", labels / f"segmentation-{i}.nii.gz", dtype)
    ds = open_dataset(labels)
    assert ds.layout == "lits" and not ds.has_images and ds.case_ids() == ["0", "1", "2"]
    case = ds.load("1", image=False)
    assert case.image is None and case.label.dtype == np.uint8
    assert np.array_equal(case.label, open_dataset(lits).load("1").label)
    assert case.spacing == pytest.approx(open_dataset(lits).load("1").spacing)
    preds = _predictions(lits, tmp_path / "pred")
    full = evaluate(preds, lits, tmp_path / "full", progress=False)
    only = evaluate(preds, labels, tmp_path / "only", progress=False)
    assert _numbers(only) == _numbers(full)
    assert only["meta"]["reference_images"] is False and full["meta"]["reference_images"]
    assert 0 < only["regions"]["liver"]["dice_per_case"] < 1


def test_labels_tr_folder_and_nnunet_names(lits, tmp_path):
    task = tmp_path / "Dataset003_Liver"
    (task / "labelsTr").mkdir(parents=True)
    (task / "imagesTr").mkdir()
    for i in range(2):  # Task03 names in labelsTr, nnU-Net channel names in imagesTr
        shutil.copy(lits / f"segmentation-{i}.nii", task / "labelsTr" / f"liver_{i}.nii")
        shutil.copy(lits / f"volume-{i}.nii", task / "imagesTr" / f"liver_{i}_0000.nii")
    shutil.copy(lits / "segmentation-2.nii", task / "labelsTr" / "case_x.nii")
    ds = open_dataset(task)
    assert ds.layout == "msd" and ds.case_ids() == ["0", "1", "case_x"]
    assert ds.load("0").image is not None  # nnU-Net image found through its _0000 name
    with pytest.raises(InputError, match="only a label found"):
        ds.load("case_x")
    assert ds.load("case_x", image=False).label.shape == ds.header("case_x")[0]
    # the labelsTr folder itself, and a root that holds labelsTr only
    shutil.rmtree(task / "imagesTr")
    for root in (task / "labelsTr", task):
        ds = open_dataset(root)
        assert ds.layout == "msd" and ds.case_ids() == ["0", "1", "case_x"]
        assert not ds.has_images


def test_plain_label_folder(lits, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    for i, name in enumerate(("a.nii.gz", "b.nii", "c_7.nii.gz")):
        _resave(lits / f"segmentation-{i}.nii", plain / name, np.uint16)
    (plain / "._a.nii.gz").write_bytes(b"macOS resource fork")  # hidden: ignored
    ds = open_dataset(plain)
    assert ds.layout == "labels" and ds.case_ids() == ["a", "b", "c_7"]
    assert np.array_equal(ds.load("b", image=False).label, open_dataset(lits).load("1").label)
    shutil.copy(plain / "b.nii", plain / "b.nii.gz")
    with pytest.raises(InputError, match="two files for one case"):
        open_dataset(plain)


def test_check_and_convert_on_labels_only(lits, tmp_path, run_cli):
    labels = tmp_path / "labels"
    labels.mkdir()
    shutil.copy(lits / "segmentation-0.nii", labels)
    code, out, err = run_cli("datasets", "check", labels)
    assert code == 0, err
    assert "(labels only)" in out and "HU" not in out
    code, _, err = run_cli("datasets", "convert", labels, tmp_path / "out")
    assert code == 2 and "only a label found" in err and "segmentation-0.nii" in err
    assert not (tmp_path / "out").exists()
