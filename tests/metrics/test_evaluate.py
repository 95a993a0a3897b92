"""`e2net-eval evaluate` end to end on LiTS-layout folders written here with nibabel."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from e2net_eval.metrics import evaluate, score_case

SPACING = (0.8, 0.9, 2.0)
SHAPE = (24, 20, 12)


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    nib.save(nib.Nifti1Image(data, affine), str(path))


def make_reference(root: Path, n: int = 3) -> dict[str, np.ndarray]:
    """LiTS layout: volume-N.nii.gz + segmentation-N.nii.gz; returns the labels by id."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    affine = np.diag([*SPACING, 1.0])
    labels = {}
    for i in range(n):
        lab = np.zeros(SHAPE, np.uint8)
        lab[4:20, 3:17, 2:10] = 1
        if i != 1:  # case 1 has no tumour
            lab[6 + i : 10 + i, 5:9, 3:7] = 2
            lab[14:17, 11:14, 5:8] = 2
        img = rng.integers(-1000, 400, SHAPE).astype(np.int16)
        _save(root / f"volume-{i}.nii.gz", img, affine)
        _save(root / f"segmentation-{i}.nii.gz", lab, affine)
        labels[str(i)] = lab
    return labels


def make_predictions(root: Path, labels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    root.mkdir(parents=True)
    affine = np.diag([*SPACING, 1.0])
    preds = {}
    names = {"0": "0.nii.gz", "1": "segmentation-1.nii", "2": "liver_2.nii.gz"}
    for cid, lab in labels.items():
        pred = lab.copy()
        pred[4:6] = 0  # under-segment the liver a little
        if cid == "1":
            pred[15:18, 4:7, 4:6] = 2  # false tumour
        _save(root / names[cid], pred, affine)
        preds[cid] = pred
    return preds


@pytest.fixture
def dataset(tmp_path):
    labels = make_reference(tmp_path / "ref")
    preds = make_predictions(tmp_path / "pred", labels)
    return tmp_path, labels, preds


def strict_json(path: Path):
    def bad(token):
        raise AssertionError(f"non-strict JSON token {token}")

    return json.loads(path.read_text(), parse_constant=bad)


def test_cli_end_to_end(dataset, run_cli):
    tmp, labels, preds = dataset
    out = tmp / "out"
    code, stdout, stderr = run_cli(
        "evaluate", tmp / "pred", tmp / "ref", "-o", out, "--no-progress"
    )
    assert code == 0, stderr
    assert "liver" in stdout and "tumour burden" in stdout
    rows = list(csv.DictReader((out / "per_case.csv").open()))
    assert [(r["case"], r["region"]) for r in rows] == [
        (c, reg) for c in ("0", "1", "2") for reg in ("liver", "tumour")
    ]
    for col in ("case", "region", "dice", "voe", "rvd", "assd", "rmsd", "mssd", "burden_ref", "tp"):
        assert col in rows[0]
    summary = strict_json(out / "summary.json")
    expected = {cid: score_case(preds[cid], labels[cid], SPACING) for cid in labels}
    liver = summary["regions"]["liver"]
    assert liver["dice_per_case"] == pytest.approx(
        np.mean([expected[c].regions["liver"].dice for c in labels])
    )
    inter = sum(expected[c].regions["liver"].counts.intersection for c in labels)
    sizes = sum(
        expected[c].regions["liver"].counts.pred + expected[c].regions["liver"].counts.ref
        for c in labels
    )
    assert liver["dice_global"] == pytest.approx(2 * inter / sizes)
    assert float(rows[2]["assd"]) == pytest.approx(expected["1"].regions["liver"].assd)
    # case 1: reference has no tumour but the prediction has one -> undefined, counted
    tumour = summary["regions"]["tumour"]
    assert tumour["assd"]["n_undefined"] == 1 and tumour["assd"]["n"] == 2
    assert rows[3]["assd"] == "" and rows[3]["rvd"] == ""
    assert summary["n_nonfinite"] >= 1  # the NaN of undefined values became null
    assert summary["detection"]["fp"] >= 1 and summary["detection"]["tp"] == 4
    assert set(summary["tumour_burden"]) >= {"rmse", "max_abs_error", "n_no_liver_predicted"}
    assert summary["meta"]["reference_root"].endswith("ref")
    assert summary["metric_per_case"][0]["case"] == "0"
    assert summary["unmatched_prediction_files"] == []


def test_unmatched_prediction_files_reported(dataset):
    tmp, labels, _ = dataset
    _save(tmp / "pred" / "case-7.nii.gz", labels["0"], np.diag([*SPACING, 1.0]))
    summary = evaluate(tmp / "pred", tmp / "ref", tmp / "out", progress=False)
    assert summary["unmatched_prediction_files"] == ["case-7.nii.gz"]


def test_python_api_and_jobs_agree(dataset):
    tmp, _, _ = dataset
    one = evaluate(tmp / "pred", tmp / "ref", tmp / "o1", progress=False)
    two = evaluate(tmp / "pred", tmp / "ref", tmp / "o2", jobs=2, progress=False)
    one.pop("meta"), two.pop("meta")
    assert json.dumps(one, sort_keys=True, default=str) == json.dumps(
        two, sort_keys=True, default=str
    )
    assert (tmp / "o1" / "per_case.csv").read_text() == (tmp / "o2" / "per_case.csv").read_text()


def test_missing_prediction(dataset, run_cli):
    tmp, _, _ = dataset
    (tmp / "pred" / "liver_2.nii.gz").unlink()
    code, _, stderr = run_cli(
        "evaluate", tmp / "pred", tmp / "ref", "-o", tmp / "out", "--no-progress"
    )
    assert code == 2 and "case 2" in stderr and "--allow-missing" in stderr
    assert not (tmp / "out" / "summary.json").exists()
    code, stdout, stderr = run_cli(
        "evaluate", tmp / "pred", tmp / "ref", "-o", tmp / "out", "--allow-missing", "--no-progress"
    )
    assert code == 0, stderr
    assert "EMPTY" in stdout and "2" in stdout
    summary = strict_json(tmp / "out" / "summary.json")
    assert summary["missing_predictions"] == ["2"]
    last = summary["metric_per_case"][2]
    assert last["missing_prediction"] is True and last["liver"]["dice"] == 0.0
    assert last["tumour_burden"]["no_liver_predicted"] is True
    assert summary["tumour_burden"]["n_no_liver_predicted"] == 1


def _rewrite(path: Path, data=None, affine=None) -> None:
    img = nib.load(str(path))
    new_data = np.asanyarray(img.dataobj) if data is None else data
    _save(path, new_data, img.affine if affine is None else affine)


def test_shape_mismatch_is_an_error(dataset, run_cli):
    tmp, _, _ = dataset
    _rewrite(tmp / "pred" / "0.nii.gz", data=np.zeros((24, 20, 11), np.uint8))
    code, _, stderr = run_cli("evaluate", tmp / "pred", tmp / "ref", "-o", tmp / "out")
    assert code == 2 and "case 0" in stderr and "shape" in stderr


def test_affine_mismatch(dataset, run_cli):
    tmp, _, _ = dataset
    affine = np.diag([*SPACING, 1.0])
    affine[0, 3] = 5.0
    _rewrite(tmp / "pred" / "0.nii.gz", affine=affine)
    code, _, stderr = run_cli("evaluate", tmp / "pred", tmp / "ref", "-o", tmp / "out")
    assert code == 2 and "affine" in stderr and "case 0" in stderr
    code, _, stderr = run_cli(
        "evaluate", tmp / "pred", tmp / "ref", "-o", tmp / "out", "--allow-affine-mismatch"
    )
    assert code == 0, stderr


def test_bad_label_values(dataset, run_cli):
    tmp, labels, _ = dataset
    bad = labels["0"].copy()
    bad[0, 0, 0] = 3
    _rewrite(tmp / "pred" / "0.nii.gz", data=bad)
    code, _, stderr = run_cli("evaluate", tmp / "pred", tmp / "ref", "-o", tmp / "out")
    assert code == 2 and "outside {0, 1, 2}" in stderr and "3" in stderr


def test_float_labels_accepted_when_integral(dataset):
    tmp, labels, _ = dataset
    _rewrite(tmp / "pred" / "0.nii.gz", data=labels["0"].astype(np.float32))
    summary = evaluate(tmp / "pred", tmp / "ref", tmp / "out", case_ids=["0"], progress=False)
    assert summary["metric_per_case"][0]["liver"]["dice"] == 1.0


def test_ambiguous_prediction_names(dataset, run_cli):
    tmp, labels, _ = dataset
    _save(tmp / "pred" / "segmentation-0.nii.gz", labels["0"], np.diag([*SPACING, 1.0]))
    code, _, stderr = run_cli("evaluate", tmp / "pred", tmp / "ref", "-o", tmp / "out")
    assert code == 2 and "several predictions" in stderr


def test_unknown_case_and_missing_folder(dataset, run_cli):
    tmp, _, _ = dataset
    code, _, stderr = run_cli("evaluate", tmp / "nope", tmp / "ref", "-o", tmp / "out")
    assert code == 2
    code, _, stderr = run_cli(
        "evaluate", tmp / "pred", tmp / "ref", "-o", tmp / "out", "--case", "99"
    )
    assert code == 2 and "99" in stderr


def test_bench_metrics_small(run_cli, tmp_path):
    code, stdout, stderr = run_cli(
        "bench",
        "metrics",
        "--size",
        "64x64x32",
        "--workdir",
        tmp_path,
        "--evaluate-cases",
        "2",
        "--evaluate-size",
        "48x48x24",
        # Two repetitions: each timed `evaluate` needs its own output folder
        # (the default is 3; with one, a refused second run went unseen).
        "--repeat",
        "2",
    )
    assert code == 0, stderr
    assert "values agree" in stdout and "faster" in stdout
    assert "DISAGREE" not in stdout
    for line in ("ours (LiTS set)  :", "ours (score set) :", "whole evaluate command   :"):
        assert math.isfinite(float(stdout.split(line)[1].split("s")[0])), line
    assert "x the floor" in stdout and "evaluate --help" in stdout


def test_bench_metrics_missing_workdir_is_bad_input(run_cli, tmp_path):
    missing = tmp_path / "nowhere"
    code, _, stderr = run_cli("bench", "metrics", "--skip-medpy", "--workdir", missing)
    assert code == 2 and "nowhere" in stderr and "Traceback" not in stderr
    assert not missing.exists()


@pytest.mark.parametrize("layout", ["msd", "ircadb"])
def test_other_reference_layouts(tmp_path, layout):
    """REF may be any layout the data layer reads; predictions on the reference grid."""
    from e2net_eval.data import open_dataset, write_phantom
    from e2net_eval.data.phantom import PhantomSpec

    write_phantom(tmp_path / "ref", PhantomSpec(layout, 2, seed=1, size=48, slices=(12, 16)))
    ds = open_dataset(tmp_path / "ref")
    (tmp_path / "pred").mkdir()
    for cid in ds.case_ids():
        case = ds.load(cid, image=False, label=True)
        pred = case.label.copy()
        pred[pred == 2] = 1  # drop every tumour
        name = f"liver_{cid}.nii.gz" if layout == "msd" else f"{cid}.nii.gz"
        _save(tmp_path / "pred" / name, pred, np.asarray(case.affine))
    summary = evaluate(tmp_path / "pred", tmp_path / "ref", tmp_path / "out", progress=False)
    assert summary["n_cases"] == 2 and summary["meta"]["reference_layout"] == layout
    assert summary["regions"]["liver"]["dice_per_case"] == 1.0
    n_ref = summary["detection"]["n_ref_lesions"]
    assert n_ref > 0
    assert summary["detection"]["fn"] == n_ref and summary["detection"]["tp"] == 0


def test_truncated_prediction_is_an_error(dataset, run_cli):
    tmp, _, _ = dataset
    path = tmp / "pred" / "0.nii.gz"
    path.write_bytes(path.read_bytes()[:-40])
    code, _, stderr = run_cli("evaluate", tmp / "pred", tmp / "ref", "-o", tmp / "out")
    assert code == 2 and "case 0" in stderr and "0.nii.gz" in stderr
