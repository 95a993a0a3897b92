"""Dice, VOE, RVD: hand-derived golden cases and every empty-mask case."""

from __future__ import annotations

import math

import numpy as np
import pytest

from e2net_eval.metrics import dice, rvd, voe


def masks(p: list[int], r: list[int]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(p, dtype=bool).reshape(2, 2), np.array(r, dtype=bool).reshape(2, 2)


def test_golden_2x2():
    # |P| = 3, |R| = 2, |P∩R| = 2, |P∪R| = 3
    p, r = masks([1, 1, 1, 0], [1, 1, 0, 0])
    assert dice(p, r) == pytest.approx(4 / 5)
    assert voe(p, r) == pytest.approx(1 - 2 / 3)
    assert rvd(p, r) == pytest.approx((3 - 2) / 2)  # over-segmentation is positive
    assert rvd(r, p) == pytest.approx((2 - 3) / 3)


def test_disjoint():
    p, r = masks([1, 0, 0, 0], [0, 0, 0, 1])
    assert dice(p, r) == 0.0
    assert voe(p, r) == 1.0
    assert rvd(p, r) == 0.0


def test_identical_3d():
    a = np.zeros((3, 3, 3), bool)
    a[1:, :2, 1] = True
    assert dice(a, a) == 1.0 and voe(a, a) == 0.0 and rvd(a, a) == 0.0


def test_both_empty():
    p, r = masks([0, 0, 0, 0], [0, 0, 0, 0])
    assert dice(p, r) == 1.0
    assert voe(p, r) == 0.0
    assert rvd(p, r) == 0.0


def test_reference_empty():
    p, r = masks([1, 0, 0, 0], [0, 0, 0, 0])
    assert dice(p, r) == 0.0
    assert voe(p, r) == 1.0
    assert math.isnan(rvd(p, r))  # undefined, never 0 or inf


def test_prediction_empty():
    p, r = masks([0, 0, 0, 0], [0, 1, 1, 0])
    assert dice(p, r) == 0.0
    assert voe(p, r) == 1.0
    assert rvd(p, r) == -1.0


def test_shape_mismatch():
    with pytest.raises(ValueError):
        dice(np.zeros((2, 2), bool), np.zeros((2, 3), bool))
