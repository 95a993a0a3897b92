"""Lesion matching on the situations that break the LiTS scorer; counts never negative."""

from __future__ import annotations

import math

import numpy as np
import pytest

from e2net_eval.metrics import DetectionCounts, match_lesions


def vol() -> np.ndarray:
    return np.zeros((30, 12, 12), bool)


def two_lesions() -> np.ndarray:
    r = vol()
    r[2:8, 2:8, 2:8] = True  # lesion A, 216 voxels
    r[12:18, 2:8, 2:8] = True  # lesion B, 216 voxels, 4 voxels away from A
    return r


def assert_sane(m) -> None:
    for c in (m.at_iou, m.any_overlap):
        assert min(c.tp, c.fp, c.fn) >= 0
        assert c.tp + c.fn == m.n_ref


def test_bridge_high_overlap_detects_both():
    ref = two_lesions()
    pred = vol()
    pred[2:18, 2:8, 2:8] = True  # one prediction covering A, the gap and B
    m = match_lesions(pred, ref)
    assert_sane(m)
    assert (m.n_ref, m.n_pred) == (2, 1)
    # merged group A+B (432) vs prediction (576): IoU 432/576 = 0.75 > 0.5
    assert m.at_iou == DetectionCounts(tp=2, fp=0, fn=0)
    assert m.group_iou == pytest.approx([0.75])
    assert m.lesion_dice == pytest.approx([2 * 432 / (432 + 576)])


def test_bridge_low_overlap_never_negative():
    # The LiTS code returns num_detected = 1 - 2 = -1 here.
    ref = two_lesions()
    pred = vol()
    pred[7:13, 4:5, 4:5] = True  # thin rod touching A and B: IoU tiny
    m = match_lesions(pred, ref)
    assert_sane(m)
    assert m.at_iou == DetectionCounts(tp=0, fp=1, fn=2)
    assert m.any_overlap == DetectionCounts(tp=2, fp=0, fn=0)


def test_split_lesion_merged_predictions():
    ref = vol()
    ref[2:14, 2:8, 2:8] = True  # one lesion, 432 voxels
    pred = vol()
    pred[2:7, 2:8, 2:8] = True  # two predictions, one per half, 180 voxels each
    pred[9:14, 2:8, 2:8] = True
    m = match_lesions(pred, ref)
    assert_sane(m)
    assert (m.n_ref, m.n_pred) == (1, 2)
    # merged prediction 360 inside the lesion: IoU 360/432 > 0.5, no false positive
    assert m.at_iou == DetectionCounts(tp=1, fp=0, fn=0)
    assert m.group_iou == pytest.approx([360 / 432])


def test_prediction_touching_nothing():
    ref = vol()
    ref[2:8, 2:8, 2:8] = True
    pred = ref.copy()
    pred[20:24, 2:5, 2:5] = True  # stray prediction far away
    m = match_lesions(pred, ref)
    assert_sane(m)
    assert m.at_iou == DetectionCounts(tp=1, fp=1, fn=0)
    assert m.any_overlap == DetectionCounts(tp=1, fp=1, fn=0)
    assert m.lesion_dice == [1.0]


def test_no_lesions_at_all():
    m = match_lesions(vol(), vol())
    assert_sane(m)
    assert m.at_iou == DetectionCounts() and m.lesion_dice == []
    assert math.isnan(m.at_iou.precision) and math.isnan(m.at_iou.f1)


def test_no_reference_lesions_only_false_positives():
    pred = vol()
    pred[2:4, 2:4, 2:4] = True
    pred[10:12, 2:4, 2:4] = True
    m = match_lesions(pred, vol())
    assert m.at_iou == DetectionCounts(tp=0, fp=2, fn=0)
    assert m.at_iou.precision == 0.0


def test_missed_lesion_and_iou_exactly_half_is_not_detected():
    ref = vol()
    ref[2:6, 2:6, 2:6] = True  # 64 voxels
    pred = vol()
    pred[2:4, 2:6, 2:6] = True  # 32 voxels inside: IoU exactly 0.5 -> not detected
    m = match_lesions(pred, ref)
    assert m.group_iou == [0.5]
    assert m.at_iou == DetectionCounts(tp=0, fp=1, fn=1)
    assert m.any_overlap == DetectionCounts(tp=1, fp=0, fn=0)


def test_six_connectivity_default_and_selectable():
    ref = vol()
    ref[2, 2, 2] = ref[3, 3, 3] = True  # corner neighbours: 2 lesions at 6-, 1 at 26-conn.
    assert match_lesions(ref, ref).n_ref == 2
    assert match_lesions(ref, ref, connectivity=26).n_ref == 1


def test_counts_and_ratios():
    c = DetectionCounts(tp=3, fp=1, fn=2) + DetectionCounts(tp=1, fp=1, fn=0)
    assert (c.tp, c.fp, c.fn) == (4, 2, 2)
    assert c.precision == pytest.approx(4 / 6)
    assert c.recall == pytest.approx(4 / 6)
    assert c.f1 == pytest.approx(8 / 12)


def test_integer_masks_and_crop_give_the_same_counts():
    ref = two_lesions()
    pred = vol()
    pred[2:8, 2:8, 3:8] = True
    pred[25:28, 9:12, 9:12] = True  # touching the array border
    m_bool = match_lesions(pred, ref)
    m_int = match_lesions(pred.astype(np.uint8), ref.astype(np.uint8))
    big = np.pad(pred, 5), np.pad(ref, 5)
    m_big = match_lesions(*big)
    for m in (m_int, m_big):
        assert (m.at_iou, m.any_overlap, m.lesion_dice) == (
            m_bool.at_iou,
            m_bool.any_overlap,
            m_bool.lesion_dice,
        )
    assert m_bool.at_iou == DetectionCounts(tp=1, fp=1, fn=1)
