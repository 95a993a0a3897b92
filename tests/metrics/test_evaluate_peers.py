"""`evaluate` with the peer metrics: columns, summary blocks, meta, the on/off switch, the
NSD tolerance, and regress gating them in their registry directions."""

from __future__ import annotations

import csv
import json
import math

import pytest

from e2net_eval.metrics import (
    PanopticCounts,
    evaluate,
    hd95,
    hd95_pooled,
    masd,
    nsd,
    panoptic_quality,
)
from tests.metrics.test_evaluate import SPACING, make_predictions, make_reference

PEER_REGION = ("hd95", "hd95_pooled", "nsd", "masd")
PEER_LESION = ("rq", "sq", "pq", "lesion_dice")


@pytest.fixture
def dataset(tmp_path):
    labels = make_reference(tmp_path / "ref")
    preds = make_predictions(tmp_path / "pred", labels)
    return tmp_path, labels, preds


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_peer_columns_and_summary(dataset, run_cli):
    tmp, labels, preds = dataset
    code, stdout, stderr = run_cli(
        "evaluate", tmp / "pred", tmp / "ref", "-o", tmp / "out", "--nsd-tolerance", "1.5"
    )
    assert code == 0, stderr
    assert "hd95 mm" in stdout and "nsd" in stdout and "PQ" in stdout
    rows = _rows(tmp / "out" / "per_case.csv")
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    meta = summary["meta"]
    assert meta["peer_metrics"] is True and meta["nsd_tolerance_mm"] == 1.5
    assert meta["peer_surface_connectivity"] == 1 and meta["panoptic_iou_threshold"] == 0.5
    for row in rows:
        cid, region = row["case"], row["region"]
        if region == "liver":
            p, r = preds[cid] >= 1, labels[cid] >= 1
        else:
            p, r = preds[cid] == 2, labels[cid] == 2
        expected = {
            "hd95": hd95(p, r, SPACING),
            "hd95_pooled": hd95_pooled(p, r, SPACING),
            "nsd": nsd(p, r, SPACING, 1.5),
            "masd": masd(p, r, SPACING),
        }
        for name, value in expected.items():
            if math.isnan(value):
                assert row[name] == "", (cid, region, name)
            else:
                assert float(row[name]) == pytest.approx(value, rel=1e-12), (cid, region, name)
        if region == "liver":  # lesion-wise columns on the tumour row only
            assert all(row[name] == "" for name in PEER_LESION)
        else:
            counts = panoptic_quality(p, r)
            for name in PEER_LESION:
                value = getattr(counts, name)
                cell = row[name]
                assert (cell == "") if math.isnan(value) else float(cell) == pytest.approx(value)
    # case 1: a false tumour, no reference tumour: distances undefined, NSD 0, RQ/PQ 0
    tumour1 = next(r for r in rows if r["case"] == "1" and r["region"] == "tumour")
    assert tumour1["hd95"] == "" and float(tumour1["nsd"]) == 0.0
    assert float(tumour1["rq"]) == 0.0 and tumour1["sq"] == ""
    # summary: stats per region, the panoptic block per case and pooled
    tumour = summary["regions"]["tumour"]
    assert tumour["hd95"]["n_undefined"] == 1 and tumour["nsd"]["n"] == 3
    pan = summary["panoptic"]
    assert pan["rq"]["n"] == 3 and pan["sq"]["n_undefined"] >= 1
    total = PanopticCounts()
    for c in labels:
        total = total + panoptic_quality(preds[c] == 2, labels[c] == 2)
    assert (pan["tp"], pan["fp"], pan["fn"]) == (total.tp, total.fp, total.fn)
    assert pan["pooled"]["pq"] == pytest.approx(total.pq)
    assert summary["metric_per_case"][1]["panoptic"]["rq"] == 0.0


def test_switch_off_peer_metrics(dataset, run_cli):
    tmp, _, _ = dataset
    code, _, err = run_cli("evaluate", tmp / "pred", tmp / "ref", "-o", tmp / "on")
    assert code == 0, err
    code, stdout, err = run_cli(
        "evaluate", tmp / "pred", tmp / "ref", "-o", tmp / "off", "--no-peer-metrics"
    )
    assert code == 0, err
    assert "hd95" not in stdout and "PQ" not in stdout
    off = json.loads((tmp / "off" / "summary.json").read_text())
    on = json.loads((tmp / "on" / "summary.json").read_text())
    assert off["meta"]["peer_metrics"] is False and "nsd_tolerance_mm" not in off["meta"]
    assert "panoptic" not in off and "panoptic" in on
    header = _rows(tmp / "off" / "per_case.csv")[0].keys()
    assert not set(header) & {*PEER_REGION, *PEER_LESION}
    assert set(_rows(tmp / "on" / "per_case.csv")[0].keys()) >= {*PEER_REGION, *PEER_LESION}
    # everything else is the same number either way
    for region in ("liver", "tumour"):
        block_off = off["regions"][region]
        block_on = {k: v for k, v in on["regions"][region].items() if k not in PEER_REGION}
        assert block_off == block_on
    assert off["detection"] == on["detection"]


def test_nsd_tolerance_changes_only_nsd(dataset):
    tmp, labels, preds = dataset
    a = evaluate(tmp / "pred", tmp / "ref", tmp / "a", progress=False, nsd_tolerance=0.0)
    b = evaluate(tmp / "pred", tmp / "ref", tmp / "b", progress=False, nsd_tolerance=10.0)
    la, lb = a["regions"]["liver"], b["regions"]["liver"]
    assert la["nsd"]["mean"] < lb["nsd"]["mean"] == 1.0
    assert la["hd95"] == lb["hd95"]
    p, r = preds["0"] >= 1, labels["0"] >= 1
    assert a["metric_per_case"][0]["liver"]["nsd"] == pytest.approx(nsd(p, r, SPACING, 0.0))


def test_bad_nsd_tolerance(dataset, run_cli):
    tmp, _, _ = dataset
    code, _, err = run_cli(
        "evaluate", tmp / "pred", tmp / "ref", "-o", tmp / "out", "--nsd-tolerance", "-1"
    )
    assert code == 2 and "nsd-tolerance" in err
    assert not (tmp / "out").exists()


def test_regress_gates_peer_metrics(dataset, run_cli):
    tmp, _, _ = dataset
    evaluate(tmp / "pred", tmp / "ref", tmp / "base", progress=False)
    base = json.loads((tmp / "base" / "summary.json").read_text())
    for path, change in (
        (("regions", "liver", "hd95", "mean"), +1.0),  # lower is better: +1 mm is worse
        (("regions", "liver", "nsd", "mean"), -0.2),  # higher is better
        (("panoptic", "pq", "mean"), -0.2),
        (("panoptic", "pooled", "lesion_dice"), -0.2),
    ):
        worse = json.loads(json.dumps(base))
        block = worse
        for part in path[:-1]:
            block = block[part]
        block[path[-1]] += change
        (tmp / "worse.json").write_text(json.dumps(worse))
        code, out, err = run_cli("regress", tmp / "worse.json", tmp / "base")
        key = ".".join(p for p in path if p not in ("regions", "mean"))
        assert code == 1 and "WORSE" in out, (key, out, err)
        worse_lines = [line for line in out.splitlines() if "WORSE" in line]
        assert len(worse_lines) == 1 and worse_lines[0].startswith(key), (key, out)
    # a baseline with the peer metrics and a current run without them: not comparable
    evaluate(tmp / "pred", tmp / "ref", tmp / "off", progress=False, peer_metrics=False)
    code, _, err = run_cli("regress", tmp / "off", tmp / "base")
    assert code == 2 and "lacks" in err
