"""Lesion-wise RQ, SQ, PQ and lesion Dice: golden cases, empty rules, and agreement with
panoptica (naive threshold matcher, IoU > 0.5) on 40 random lesion layouts.

panoptica is given our 6-connected lesion labels as unmatched instances, so both sides
match the same lesions; one test also lets panoptica label the masks itself (cc3d's
26-connectivity) against ours at 26. Where the two differ by policy (no match, no lesion)
the test says which value each gives.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from panoptica import (
    ConnectedComponentsInstanceApproximator,
    InputType,
    Metric,
    MetricMode,
    NaiveThresholdMatching,
    Panoptica_Evaluator,
    disable_citation_reminder,
)

from e2net_eval.metrics import PanopticCounts, panoptic_quality
from e2net_eval.metrics.lesions import label_components, lesion_overlaps
from e2net_eval.metrics.panoptic import panoptic_from_overlaps
from tests.helpers.random_cases import random_lesions

disable_citation_reminder()


def _panoptica(pred_lab: np.ndarray, ref_lab: np.ndarray, expected_input=None):
    evaluator = Panoptica_Evaluator(
        expected_input=expected_input or InputType.UNMATCHED_INSTANCE,
        instance_approximator=ConnectedComponentsInstanceApproximator(),
        instance_matcher=NaiveThresholdMatching(
            matching_metric=Metric.IOU, matching_threshold=0.5, strict_threshold=True
        ),
        instance_metrics=[Metric.DSC, Metric.IOU],
        global_metrics=[Metric.DSC],
        log_times=False,
        verbose=False,
    )
    return evaluator.evaluate(pred_lab, ref_lab, verbose=False)["ungrouped"]


def vol() -> np.ndarray:
    return np.zeros((30, 12, 12), bool)


def test_golden_match_miss_and_false_lesion():
    ref = vol()
    ref[2:8, 2:8, 2:8] = True  # lesion A, 216 voxels
    ref[12:18, 2:8, 2:8] = True  # lesion B, 216 voxels, missed
    pred = vol()
    pred[2:8, 2:8, 3:8] = True  # 180 voxels inside A: IoU 180/216, Dice 360/396
    pred[22:26, 2:5, 2:5] = True  # a false lesion
    c = panoptic_quality(pred, ref)
    assert (c.tp, c.fp, c.fn) == (1, 1, 1)
    assert c.rq == pytest.approx(1 / (1 + 0.5 + 0.5))
    assert c.sq == pytest.approx(180 / 216)
    assert c.pq == pytest.approx((180 / 216) / 2)
    assert c.lesion_dice == pytest.approx((360 / 396) / 3)
    assert c.pq == pytest.approx(c.sq * c.rq)


def test_iou_exactly_half_is_not_a_match():
    ref = vol()
    ref[2:6, 2:6, 2:6] = True  # 64 voxels
    pred = vol()
    pred[2:4, 2:6, 2:6] = True  # 32 voxels inside: IoU exactly 0.5
    c = panoptic_quality(pred, ref)
    assert (c.tp, c.fp, c.fn) == (0, 1, 1) and c.pq == 0.0
    pred[4, 2, 2] = True  # one more voxel: 33/64 > 0.5
    assert panoptic_quality(pred, ref).tp == 1


def test_no_merging_unlike_detection():
    # One prediction bridging two lesions: detection merges them; panoptic matching does
    # not (IoU of the bridge with either lesion alone is below 0.5).
    ref = vol()
    ref[2:8, 2:8, 2:8] = True
    ref[12:18, 2:8, 2:8] = True
    pred = vol()
    pred[2:18, 2:8, 2:8] = True
    c = panoptic_quality(pred, ref)
    assert (c.tp, c.fp, c.fn) == (0, 1, 2)


def test_empty_rules():
    empty = vol()
    one = vol()
    one[2:5, 2:5, 2:5] = True
    both_empty = panoptic_quality(empty, empty)
    assert (both_empty.rq, both_empty.pq, both_empty.lesion_dice) == (1.0, 1.0, 1.0)
    assert math.isnan(both_empty.sq)
    for pred, ref in ((one, empty), (empty, one)):
        c = panoptic_quality(pred, ref)
        assert (c.rq, c.pq, c.lesion_dice) == (0.0, 0.0, 0.0) and math.isnan(c.sq)


def test_counts_add_over_cases():
    a = PanopticCounts(tp=2, fp=1, fn=0, sum_iou=1.5, sum_dice=1.8)
    b = PanopticCounts(tp=0, fp=0, fn=3)
    s = a + b
    assert (s.tp, s.fp, s.fn) == (2, 1, 3)
    assert s.pq == pytest.approx(1.5 / (2 + 0.5 + 1.5))
    assert s.lesion_dice == pytest.approx(1.8 / 6)
    assert (PanopticCounts() + PanopticCounts()).rq == 1.0


def test_threshold_below_half_refused():
    ov = lesion_overlaps(vol(), vol())
    with pytest.raises(ValueError):
        panoptic_from_overlaps(ov, 0.4)


@pytest.mark.parametrize("seed", range(40))
def test_agrees_with_panoptica(seed):
    rng = np.random.default_rng(9100 + seed)
    pred, ref = random_lesions(rng)
    ours = panoptic_quality(pred, ref)
    p_lab, n_p = label_components(pred, 6)
    r_lab, n_r = label_components(ref, 6)
    res = _panoptica(p_lab.astype(np.uint32), r_lab.astype(np.uint32))
    assert (ours.tp, ours.fp, ours.fn) == (res.tp, res.fp, res.fn)
    assert (ours.tp + ours.fp, ours.tp + ours.fn) == (n_p, n_r)
    if n_p + n_r == 0:  # no lesion: panoptica NaN, ours 1 (docs/metrics.md)
        assert math.isnan(res.rq) and math.isnan(res.pq)
        assert (ours.rq, ours.pq, ours.lesion_dice) == (1.0, 1.0, 1.0)
        return
    assert ours.rq == pytest.approx(res.rq, rel=1e-12)
    if ours.tp == 0:  # nothing matched: panoptica SQ 0, ours undefined
        assert res.sq == 0.0 and math.isnan(ours.sq)
        assert ours.pq == res.pq == 0.0 and ours.lesion_dice == 0.0
        return
    assert ours.sq == pytest.approx(res.sq, rel=1e-12)
    assert ours.pq == pytest.approx(res.pq, rel=1e-12)
    dsc = res.get_list_metric(Metric.DSC, MetricMode.ALL)
    assert ours.sum_dice / ours.tp == pytest.approx(res.sq_dsc, rel=1e-12)
    assert ours.lesion_dice == pytest.approx(sum(dsc) / (res.tp + res.fp + res.fn), rel=1e-12)


def test_agrees_with_panoptica_labelling_itself():
    """panoptica's own connected components (cc3d default, 26-connectivity) on the masks."""
    hits = 0
    for seed in range(8):
        rng = np.random.default_rng(9500 + seed)
        pred, ref = random_lesions(rng)
        ours = panoptic_quality(pred, ref, connectivity=26)
        res = _panoptica(
            pred.astype(np.uint8), ref.astype(np.uint8), expected_input=InputType.SEMANTIC
        )
        assert (ours.tp, ours.fp, ours.fn) == (res.tp, res.fp, res.fn)
        if ours.tp:
            hits += 1
            assert ours.pq == pytest.approx(res.pq, rel=1e-12)
    assert hits >= 3
