"""pandas readers of evaluate's outputs: e2net_eval.scores.read_per_case / read_summary."""

from __future__ import annotations

import ast
import json
import math
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from e2net_eval.data import write_phantom
from e2net_eval.data.phantom import PhantomSpec
from e2net_eval.errors import InputError
from e2net_eval.metrics import evaluate, registry
from e2net_eval.metrics.columns import csv_columns
from e2net_eval.metrics.registry import METRICS, Metric, registered
from e2net_eval.scores import (
    SUMMARY_COLUMNS,
    per_case_frame,
    read_evaluation,
    read_per_case,
    read_summary,
)

VOLUME = ["ref_volume_ml", "pred_volume_ml"]


def test_the_registry_is_the_ground_floor_of_metrics():
    """registry.py imports no e2net_eval module, at the top or inside a function: no
    circle through it, and every `compute` reads only what it is given."""
    tree = ast.parse(open(registry.__file__, encoding="utf-8").read())
    names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in names if m and m.startswith("e2net_eval")}, names


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A plain label folder with ids "007", "010", "3" and predictions, one of which puts
    tumour where the reference has none (undefined RVD and distances)."""
    tmp = tmp_path_factory.mktemp("scores")
    write_phantom(tmp / "lits", PhantomSpec("lits", 3, seed=4, size=32, slices=(8, 10)))
    labels, preds = tmp / "labels", tmp / "pred"
    labels.mkdir()
    preds.mkdir()
    for i, cid in enumerate(("007", "010", "3")):
        img = nib.load(str(tmp / "lits" / f"segmentation-{i}.nii"), mmap=False)
        ref = np.asarray(img.dataobj).astype(np.uint8)
        if cid == "3":
            ref[ref == 2] = 1  # no reference tumour
        pred = np.roll(ref, 1, axis=0)
        if cid == "3":
            pred[10:13, 10:13, 3:5] = 2
        nib.save(nib.Nifti1Image(ref, img.affine), str(labels / f"{cid}.nii.gz"))
        nib.save(nib.Nifti1Image(pred, img.affine), str(preds / f"{cid}.nii.gz"))
    evaluate(preds, labels, tmp / "out", progress=False)
    return tmp


def test_read_per_case_columns_types_and_typed_nulls(scored):
    frame = read_per_case(scored / "out")
    assert tuple(frame.columns) == csv_columns()
    assert list(frame["case"].unique()) == ["3", "007", "010"]  # strings, natural order
    assert str(frame["case"].dtype) == "string" and str(frame["dice"].dtype) == "Float64"
    assert str(frame["tp"].dtype) == "Int64"
    assert str(frame["missing_prediction"].dtype) == "boolean"
    liver = frame[frame.region == "liver"]
    assert liver["tp"].isna().all() and liver["burden_ref"].isna().all()  # not filled: <NA>
    assert liver["pq"].isna().all() and frame[frame.region == "tumour"]["pq"].notna().all()
    t3 = frame[(frame.case == "3") & (frame.region == "tumour")].iloc[0]
    assert t3["rvd"] is pd.NA and t3["assd"] is pd.NA  # undefined: <NA>, not NaN or 0
    assert t3["dice"] == 0.0 and t3["fp"] >= 1
    summary = json.loads((scored / "out" / "summary.json").read_text())
    assert frame["dice"].mean() == pytest.approx(
        np.mean([r[reg]["dice"] for r in summary["metric_per_case"] for reg in ("liver", "tumour")])
    )
    # the same frame from summary.json alone, except the volumes (no voxel size there)
    from_json = read_per_case(scored / "out" / "summary.json")
    assert from_json.drop(columns=VOLUME).equals(frame.drop(columns=VOLUME))
    assert from_json[VOLUME].isna().all().all()
    assert read_per_case(scored / "out" / "per_case.csv").equals(frame)


def test_read_summary_one_row_per_region_and_metric(scored):
    table = read_summary(scored / "out")
    assert tuple(table.columns) == SUMMARY_COLUMNS
    assert not table.duplicated(["region", "metric"]).any()
    summary = json.loads((scored / "out" / "summary.json").read_text())
    row = table.set_index(["region", "metric"])
    assert (
        row.loc[("liver", "dice_per_case"), "value"] == summary["regions"]["liver"]["dice_per_case"]
    )
    assd = summary["regions"]["tumour"]["assd"]
    got = row.loc[("tumour", "assd")]
    assert got["value"] == assd["mean"] and got["n_undefined"] == assd["n_undefined"] == 1
    assert got["unit"] == "mm" and not got["higher_is_better"]
    assert row.loc[("tumour", "tumour_burden_rmse"), "key"] == "tumour_burden.rmse"
    assert row.loc[("tumour", "detection_any_overlap_f1"), "value"] == pytest.approx(
        summary["detection"]["any_overlap"]["f1"]
    )
    assert bool(row.loc[("liver", "rvd"), "absolute"])
    # lesion-wise scores: the mean per case and the value pooled over the set, both rows
    assert row.loc[("tumour", "pq"), "key"] == "panoptic.pq"
    assert row.loc[("tumour", "pq"), "value"] == summary["panoptic"]["pq"]["mean"]
    assert row.loc[("tumour", "pq_pooled"), "key"] == "panoptic.pooled.pq"
    assert row.loc[("tumour", "pq_pooled"), "value"] == summary["panoptic"]["pooled"]["pq"]
    assert row.loc[("tumour", "detection_lesion_dice"), "key"] == "detection.lesion_dice"
    # every metric of the registry that evaluate writes is a row, in registry order
    for name, metric in METRICS.items():
        if metric.level in ("case", "region"):
            assert (("liver", name) in row.index) and (("tumour", name) in row.index)
    assert (
        list(dict.fromkeys(table.metric))[:3] == [m for m in METRICS if m in set(table.metric)][:3]
    )


def test_a_new_registry_metric_becomes_a_column_and_a_row(scored, tmp_path):
    toy = Metric(
        "pred_over_ref",
        False,
        "",
        "toy",
        level="case",
        compute=lambda r: r.counts.pred / r.counts.ref if r.counts.ref else math.nan,
    )
    with registered(toy):
        evaluate(scored / "pred", scored / "labels", tmp_path / "out", progress=False)
        frame = read_per_case(tmp_path / "out")
        assert "pred_over_ref" in frame.columns and str(frame["pred_over_ref"].dtype) == "Float64"
        table = read_summary(tmp_path / "out")
        assert ("liver", "pred_over_ref") in set(zip(table.region, table.metric, strict=True))
    # read by a version without it: still a typed column and a row (direction unknown)
    frame = read_per_case(tmp_path / "out")
    assert str(frame["pred_over_ref"].dtype) == "Float64"
    assert read_per_case(tmp_path / "out" / "summary.json")["pred_over_ref"].notna().any()
    row = (
        read_summary(tmp_path / "out")
        .set_index(["region", "metric"])
        .loc[("liver", "pred_over_ref")]
    )
    assert row["higher_is_better"] is pd.NA


def test_bad_files_name_the_file_and_the_case(scored, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(scored / "out", out)
    text = (out / "per_case.csv").read_text().splitlines()
    cells = text[3].split(",")
    cells[2] = "abc"  # dice of case 007, liver
    (out / "per_case.csv").write_text("\n".join([*text[:3], ",".join(cells), *text[4:]]) + "\n")
    with pytest.raises(InputError, match="column dice: 'abc' is not a number") as err:
        read_per_case(out)
    assert "case 007" in str(err.value) and "per_case.csv" in str(err.value)
    (out / "per_case.csv").write_text("region,dice\nliver,0.5\n")
    with pytest.raises(InputError, match="lacks the column 'case'"):
        read_per_case(out)
    (out / "summary.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot read JSON"):
        read_summary(out)
    with pytest.raises(InputError, match="no summary.json"):
        read_summary(tmp_path)


def test_evaluation_checks_csv_against_summary(scored, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(scored / "out", out)
    ev = read_evaluation(out)
    assert ev.case_ids() == ["3", "007", "010"] and ev.meta["reference_layout"] == "labels"
    lines = (out / "per_case.csv").read_text().splitlines()
    (out / "per_case.csv").write_text("\n".join(lines[:-2]) + "\n")  # drop case 010
    with pytest.raises(InputError, match="only in summary.json: 010"):
        read_evaluation(out)


def test_per_case_frame_of_an_old_summary_without_bookkeeping():
    summary = {
        "regions": {"liver": {}, "tumour": {}},
        "metric_per_case": [{"case": 1, "liver": {"dice": 0.9}, "tumour": {"dice": None}}],
    }
    frame = per_case_frame(summary)
    assert list(frame["case"]) == ["1", "1"] and frame["dice"].isna().tolist() == [False, True]
    assert frame["intersection"].isna().all() and str(frame["intersection"].dtype) == "Int64"


def test_without_peer_metrics_the_frames_have_no_peer_columns(scored, tmp_path):
    evaluate(
        scored / "pred", scored / "labels", tmp_path / "out", progress=False, peer_metrics=False
    )
    frame = read_per_case(tmp_path / "out")
    assert tuple(frame.columns) == csv_columns(peer=False) and "hd95" not in frame.columns
    from_json = read_per_case(tmp_path / "out" / "summary.json")
    assert from_json.drop(columns=VOLUME).equals(frame.drop(columns=VOLUME))
    assert "pq" not in set(read_summary(tmp_path / "out").metric)
