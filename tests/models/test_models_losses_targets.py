"""Edge targets and losses against values derived by hand on tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reference_models import make_config
from reference_models.losses import bce_loss, iou_loss, objective
from reference_models.targets import distance_map, edge_map, edge_targets


def square(size: int, lo: int, hi: int) -> np.ndarray:
    m = np.zeros((size, size), np.float32)
    m[lo:hi, lo:hi] = 1
    return m


# A 5x5 square in a 7x7 image: its edge is the outer ring of 16 pixels; the distance to the
# nearest edge pixel is 1 on the inner ring and 2 at the centre, so T = 1 - D/2 there.
SQUARE = square(7, 1, 6)
SQUARE_EDGE = np.array(
    [
        [0, 0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 1, 1, 0],
        [0, 1, 0, 0, 0, 1, 0],
        [0, 1, 0, 0, 0, 1, 0],
        [0, 1, 0, 0, 0, 1, 0],
        [0, 1, 1, 1, 1, 1, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    np.float32,
)
SQUARE_DIST = np.array(
    [
        [0, 0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 1, 1, 0],
        [0, 1, 0.5, 0.5, 0.5, 1, 0],
        [0, 1, 0.5, 0, 0.5, 1, 0],
        [0, 1, 0.5, 0.5, 0.5, 1, 0],
        [0, 1, 1, 1, 1, 1, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    np.float32,
)


def test_edge_and_distance_of_a_square():
    np.testing.assert_array_equal(edge_map(SQUARE), SQUARE_EDGE)
    np.testing.assert_allclose(distance_map(SQUARE), SQUARE_DIST)


def test_image_border_is_not_an_edge():
    # A 3x3 square in the corner of a 5x5 crop: only its sides inside the image are edges.
    m = square(5, 0, 3)
    expected_edge = np.zeros((5, 5), np.float32)
    expected_edge[2, 0:3] = 1
    expected_edge[0:3, 2] = 1
    np.testing.assert_array_equal(edge_map(m), expected_edge)
    # D = 2 at the corner (0, 0), 1 at (0, 1), (1, 0), (1, 1): T = 0, 0.5, 0.5, 0.5.
    expected = expected_edge.copy()
    expected[0, 1] = expected[1, 0] = expected[1, 1] = 0.5
    np.testing.assert_allclose(distance_map(m), expected)


def test_degenerate_masks():
    empty = np.zeros((6, 6), np.float32)
    full = np.ones((6, 6), np.float32)
    line = np.zeros((6, 6), np.float32)
    line[2, 1:5] = 1
    for fn in (edge_map, distance_map):
        np.testing.assert_array_equal(fn(empty), empty)
        np.testing.assert_array_equal(fn(full), empty)  # no boundary inside the crop
        np.testing.assert_array_equal(fn(line), line)  # all pixels are edge pixels


def test_distance_is_normalised_per_image_and_channel():
    big, small = SQUARE, square(7, 2, 5)  # 3x3: ring D=0 (T=1), centre D=1 (T=0)
    mask = torch.tensor(np.stack([np.stack([big, small]), np.stack([small, big])]))
    t = edge_targets(mask, "dist")
    assert t.shape == (2, 2, 7, 7) and t.dtype == torch.float32
    np.testing.assert_allclose(t[0, 0].numpy(), SQUARE_DIST)
    np.testing.assert_allclose(t[1, 1].numpy(), SQUARE_DIST)
    assert t[0, 1, 3, 3] == 0 and t[0, 1, 2, 2] == 1
    np.testing.assert_array_equal(t[0, 1].numpy(), t[1, 0].numpy())
    assert float(t.min()) >= 0 and float(t.max()) <= 1


def test_torch_wrapper_edge_kind_and_errors():
    mask = torch.tensor(SQUARE)[None, None].repeat(3, 2, 1, 1)
    e = edge_targets(mask, "edge")
    assert e.shape == mask.shape
    assert all(np.array_equal(p.numpy(), SQUARE_EDGE) for p in e.reshape(-1, 7, 7))
    assert edge_targets(mask.to(torch.uint8), "edge").dtype == torch.float32
    with pytest.raises(ValueError, match="kind"):
        edge_targets(mask, "sobel")
    with pytest.raises(ValueError, match="B, C, H, W"):
        edge_targets(mask[0], "edge")


def logit(p: float) -> float:
    return math.log(p / (1 - p))


# Image 0: g = [[1, 0], [1, 1]], p = [[0.8, 0.4], [0.5, 0.9]].
#   BCE = -(ln 0.8 + ln 0.6 + ln 0.5 + ln 0.9) / 4 = 1.532477 / 4 = 0.383119
#   IoU: sum gp = 2.2, sum (g + p - gp) = 3 + 2.6 - 2.2 = 3.4 -> 1 - 3.2 / 4.4 = 0.272727
# Image 1: g = 0, p = 0.5 everywhere.
#   BCE = ln 2 = 0.693147; IoU alone: 1 - (0 + 1) / (2 + 1) = 0.666667
# Both images as one batch (IoU over the batch): sum gp = 2.2, sum (g + p - gp) = 3.4 + 2
#   -> 1 - 3.2 / 6.4 = 0.5 (the mean of the per-image values would be 0.469697).
G = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
LOGITS = torch.tensor(
    [[[[logit(0.8), logit(0.4)], [logit(0.5), logit(0.9)]]], [[[0.0, 0.0], [0.0, 0.0]]]]
)
BCE = (0.383119 * 4 + 0.693147 * 4) / 8
IOU = 0.5


def test_bce_and_iou_hand_values():
    assert bce_loss(LOGITS[:1], G[:1]).item() == pytest.approx(0.383119, abs=1e-5)
    assert iou_loss(LOGITS[:1], G[:1]).item() == pytest.approx(0.272727, abs=1e-5)
    assert iou_loss(LOGITS[1:], G[1:]).item() == pytest.approx(2 / 3, abs=1e-6)
    assert bce_loss(LOGITS, G).item() == pytest.approx(BCE, abs=1e-5)
    assert iou_loss(LOGITS, G).item() == pytest.approx(IOU, abs=1e-5)


def test_losses_are_stable_for_extreme_logits():
    big = torch.tensor([[[[200.0, -200.0]]]], requires_grad=True)
    g = torch.tensor([[[[0.0, 1.0]]]])
    loss = bce_loss(big, g) + iou_loss(big, g)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(big.grad).all()
    assert bce_loss(big, g).item() == pytest.approx(200.0)
    assert bce_loss(-big, g).item() < 1e-6


def test_stage1_objective():
    loss, parts = objective(make_config("stage1"), {"seg": LOGITS}, G)
    assert parts["bce"] == pytest.approx(BCE, abs=1e-5)
    assert parts["iou"] == pytest.approx(IOU, abs=1e-5)
    assert loss.item() == pytest.approx(BCE + IOU, abs=1e-5) == parts["total"]


def test_eq3_objective_weights_the_edge_term_by_four():
    cfg = make_config("dist_dcff")
    g = G.repeat(1, 2, 1, 1)  # liver and tumour channels, same hand values
    zeros = torch.zeros_like(g)  # p = 0.5 everywhere
    edge_t = torch.full_like(g, 0.25)  # BCE(0.25, p=0.5) = ln 2
    outputs = {"seg": LOGITS.repeat(1, 2, 1, 1), "s1": zeros, "edge": zeros}
    loss, parts = objective(cfg, outputs, g, edge_t)
    # s1 at p = 0.5: BCE = ln 2; IoU over the batch: sum gp = 1.5,
    # sum (g + p - gp) = 3 + 4 - 1.5 = 5.5 -> 1 - 2.5 / 6.5 = 4 / 6.5.
    assert parts["bce_s1"] == pytest.approx(math.log(2), abs=1e-6)
    assert parts["iou_s1"] == pytest.approx(4 / 6.5, abs=1e-6)
    assert parts["bce_s2"] == pytest.approx(BCE, abs=1e-5)
    assert parts["iou_s2"] == pytest.approx(IOU, abs=1e-5)
    assert parts["bce_edge"] == pytest.approx(math.log(2), abs=1e-6)
    expected = math.log(2) + 4 / 6.5 + BCE + IOU + 4 * math.log(2)
    assert loss.item() == pytest.approx(expected, abs=1e-5)


def test_eq3_computes_the_configured_target_when_absent():
    mask = torch.tensor(SQUARE)[None, None].repeat(1, 2, 1, 1)
    outputs = {k: torch.randn(1, 2, 7, 7) for k in ("seg", "s1", "edge")}
    for name, kind in (("edge", "edge"), ("dist_dcff", "dist")):
        cfg = make_config(name)
        got, _ = objective(cfg, outputs, mask)
        want, _ = objective(cfg, outputs, mask, edge_targets(mask, kind))
        assert got.item() == pytest.approx(want.item())
    with pytest.raises(ValueError, match="differ"):
        objective(make_config("baseline"), {"seg": torch.zeros(1, 2, 7, 7)}, mask[:, :1])
