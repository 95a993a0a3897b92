"""Case scoring (regions, burden), set accumulation: per-case vs global Dice, undefined counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from e2net_eval.metrics import (
    BurdenAccumulator,
    ScoredCase,
    SetAccumulator,
    score_case,
    stats,
    tumour_burden,
)


def label(shape=(6, 6, 6)) -> np.ndarray:
    return np.zeros(shape, np.uint8)


def test_regions_liver_includes_tumour():
    ref = label()
    ref[1:5, 1:5, 1:5] = 1  # 64 liver voxels
    ref[2:4, 2:4, 2:4] = 2  # 8 of them tumour
    pred = ref.copy()
    pred[2:4, 2:4, 2:4] = 1  # tumour predicted as liver: liver still perfect
    s = score_case(pred, ref, (1.0, 1.0, 1.0))
    assert s.regions["liver"].dice == 1.0
    assert s.regions["tumour"].dice == 0.0
    assert math.isnan(s.regions["tumour"].assd)  # prediction empty: undefined
    assert s.burden_ref == pytest.approx(8 / 64)
    assert s.burden_pred == 0.0 and not s.no_liver_predicted
    assert s.lesions.at_iou.fn == 1


def test_tumour_burden_and_no_liver_flag():
    ref = label()
    ref[1:5, 1:5, 1:5] = 1
    ref[1:3, 1:5, 1:5] = 2
    assert tumour_burden(ref) == pytest.approx(0.5)
    assert tumour_burden(label()) == 0.0
    s = score_case(label(), ref, (1, 1, 1))
    assert s.no_liver_predicted and s.burden_pred == 0.0
    assert s.regions["liver"].dice == 0.0 and math.isnan(s.regions["liver"].mssd)


def test_empty_case_everything_defined():
    s = score_case(label(), label(), (1, 1, 1))
    for region in ("liver", "tumour"):
        r = s.regions[region]
        assert (r.dice, r.voe, r.rvd, r.assd, r.rmsd, r.mssd) == (1.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def test_score_case_crop_equals_full_scoring():
    rng = np.random.default_rng(3)
    ref = (rng.random((20, 18, 10)) > 0.6).astype(np.uint8)
    pred = (rng.random((20, 18, 10)) > 0.6).astype(np.uint8) * 2
    s = score_case(pred, ref, (0.7, 0.9, 2.0))
    from e2net_eval.metrics import assd, dice

    assert s.regions["liver"].dice == dice(pred >= 1, ref >= 1)
    assert s.regions["liver"].assd == pytest.approx(assd(pred >= 1, ref >= 1, (0.7, 0.9, 2.0)))
    assert math.isnan(s.regions["tumour"].assd)  # reference has no tumour


def test_stats_counts_undefined():
    st = stats([1.0, math.nan, 3.0])
    assert st["mean"] == 2.0 and st["n"] == 2 and st["n_undefined"] == 1
    assert math.isnan(stats([math.nan])["mean"])


def test_burden_accumulator():
    acc = BurdenAccumulator()
    acc.add(0.1, 0.2, no_liver_predicted=False)
    acc.add(0.0, 0.3, no_liver_predicted=True)
    assert acc.rmse == pytest.approx(math.sqrt((0.01 + 0.09) / 2))
    assert acc.max_abs_error == pytest.approx(0.3)
    assert acc.summary()["n_no_liver_predicted"] == 1


def test_set_accumulator_dice_per_case_vs_global():
    # case a: big liver, perfect; case b: small liver, missed half
    a = label((10, 10, 10))
    a[0:10, 0:10, 0:5] = 1  # 500 voxels
    b_ref = label((10, 10, 10))
    b_ref[0:2, 0:5, 0:2] = 1  # 20 voxels
    b_pred = label((10, 10, 10))
    b_pred[0:1, 0:5, 0:2] = 1  # 10 voxels inside
    acc = SetAccumulator()
    acc.add(ScoredCase("a", score_case(a, a, (1, 1, 1))))
    acc.add(ScoredCase("b", score_case(b_pred, b_ref, (1, 1, 1)), missing=False))
    out = acc.summary()
    liver = out["regions"]["liver"]
    assert liver["dice_per_case"] == pytest.approx((1.0 + 20 / 30) / 2)
    assert liver["dice_global"] == pytest.approx(2 * 510 / (510 + 520))
    assert liver["voe"]["n"] == 2
    tumour = out["regions"]["tumour"]
    assert tumour["dice_per_case"] == 1.0 and tumour["assd"]["mean"] == 0.0
    assert out["n_cases"] == 2 and len(out["metric_per_case"]) == 2
    assert len(acc.rows) == 4 and {r["region"] for r in acc.rows} == {"liver", "tumour"}
    assert out["detection"]["tp"] == 0 and math.isnan(out["detection"]["precision"])
