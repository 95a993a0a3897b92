"""regress and report read what the real `evaluate` writes (schema compatibility)."""

from __future__ import annotations

import shutil

import pytest

from e2net_eval.data import write_phantom
from e2net_eval.data.phantom import PhantomSpec
from e2net_eval.metrics import evaluate
from e2net_eval.report.build import build_tables
from e2net_eval.report.regress import compare, flatten_summary, higher_is_better, load_metrics
from e2net_eval.report.results import load_run
from e2net_eval.util.jsonio import dump_json
from tests.helpers.report_fakes import cell_of, column


@pytest.fixture(scope="module")
def real_summary(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    write_phantom(root / "lits", PhantomSpec("lits", 3, seed=4, size=48, slices=(12, 16)))
    preds = root / "pred"
    preds.mkdir()
    for i in range(3):  # the reference itself as prediction: every Dice is 1
        shutil.copy(root / "lits" / f"segmentation-{i}.nii", preds / f"{i}.nii")
    run = root / "run"
    evaluate(preds, root / "lits", run / "eval" / "lits_val" / "dist_dcff", progress=False)
    dump_json(run / "ablation.json", {"protocol": "leak-free", "profile": "small", "seed": 4})
    return run


#: The direction of each metric as docs/metrics.md defines it, independent of the registry
#: (the leaf name of a flattened key); RVD is gated on its magnitude.
HIGHER = {"dice", "dice_per_case", "dice_global", "precision", "recall", "f1", "lesion_dice"}
HIGHER |= {"nsd", "rq", "sq", "pq"}
LOWER = {"voe", "assd", "rmsd", "mssd", "rmse", "max_abs_error", "hd95", "hd95_pooled", "masd"}
MAGNITUDE = {"rvd"}


def _worse(key: str, value: float) -> float:
    """`value` moved against the metric's documented direction by 0.1."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf in MAGNITUDE:
        return value - 0.1 if value <= 0 else value + 0.1
    assert leaf in HIGHER | LOWER, f"no documented direction for {key}"
    return value - 0.1 if leaf in HIGHER else value + 0.1


def test_every_gated_metric_of_a_real_summary_is_gated_the_right_way(real_summary):
    """Each defined metric of what `evaluate` writes, made worse (by its documented
    direction) alone, fails the gate; made better alone, passes it. A direction missing or
    flipped in the registry, or a metric the gate ignores, fails this test."""
    metrics = load_metrics(real_summary)
    assert metrics["eval/lits_val/dist_dcff/liver.dice_per_case"] == pytest.approx(1.0)
    defined = [k for k, v in metrics.items() if v is not None]
    assert len(defined) >= 20
    for key in metrics:
        assert higher_is_better(key) is not None, key
    for key in defined:
        worse = {**metrics, key: _worse(key, metrics[key])}
        statuses = {d.key: d.status for d in compare(worse, metrics)}
        assert statuses[key] == "worse", key
        assert {s for k, s in statuses.items() if k != key} <= {"ok", "undefined"}, key
        if key.rsplit(".", 1)[-1] in MAGNITUDE:  # only a non-zero |RVD| can get better
            if metrics[key] == 0:
                continue
            better = {**metrics, key: metrics[key] / 2}
        else:
            better = {**metrics, key: 2 * metrics[key] - worse[key]}
        assert {d.key: d.status for d in compare(better, metrics)}[key] == "better", key


def test_tables_from_a_real_summary(real_summary):
    run = load_run(real_summary)
    table1 = build_tables(run)[0]
    row = table1.section("measured")[0]

    def cell(summary_key):
        col = column(1, summary_key)
        return cell_of(table1, row, col["key"]), col["scale"]

    got, scale = cell("regions.liver.dice_per_case")  # the reference itself: Dice 1
    assert (got.value, got.low, got.high) == pytest.approx((scale, scale, scale))
    got, scale = cell("regions.liver.dice_global")  # interval from the voxel counts
    assert got.value == pytest.approx(scale) and got.low == pytest.approx(scale)
    assert cell("tumour_burden.rmse")[0].value == pytest.approx(0.0)
    flat = flatten_summary(run.summaries["lits_val"]["dist_dcff"])
    assert flat["tumour_burden.rmse"] == pytest.approx(0.0)


def test_peer_table_from_a_real_summary(real_summary):
    """The report's further-metrics table: each column carries its registry direction and
    the cell is the summary's mean per case (with an interval over the per-case values)."""
    from e2net_eval.metrics.registry import METRICS

    run = load_run(real_summary)
    tables = {t.key: t for t in build_tables(run)}
    surface, lesion = tables["peer_surface_lits_val"], tables["peer_lesion_lits_val"]
    summary = run.summaries["lits_val"]["dist_dcff"]
    labels = {**dict(surface.columns), **dict(lesion.columns)}
    assert labels["regions.liver.hd95"] == "liver HD95 (mm) ↓"
    assert labels["regions.tumour.nsd"] == "tumour NSD ↑"
    assert labels["panoptic.pq"] == "lesion PQ ↑"
    cells = {}
    for table in (surface, lesion):
        for (key, label), cell in zip(table.columns, table.rows[0].cells, strict=True):
            name = key.rsplit(".", 1)[-1]
            assert label.endswith("↑" if METRICS[name].higher_is_better else "↓"), key
            block = summary
            for part in key.split("."):
                block = block[part]
            assert cell.value == pytest.approx(block["mean"]), key
            cells[key] = cell
    # the reference scored against itself: every distance 0, every overlap-like score 1
    assert cells["regions.liver.hd95"].value == 0.0 and cells["panoptic.pq"].value == 1.0
