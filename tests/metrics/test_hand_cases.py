"""Small geometric cases with hand-computed answers, each aimed at one realistic bug that
the other tests let pass (tools/mutate.py names them: M10, M16, M17)."""

from __future__ import annotations

import numpy as np
import pytest

from e2net_eval.metrics import ScoredCase, SetAccumulator, nsd, score_case
from e2net_eval.metrics.surface import surface_distances

# Two single voxels two slices apart at spacing (1, 1, 0.3): each is the other's nearest
# surface voxel at 2 x 0.3 = 0.6 mm, a tie with a 0.6 mm tolerance in exact arithmetic.
TIE_SPACING = (1.0, 1.0, 0.3)


def _two_voxels() -> tuple[np.ndarray, np.ndarray]:
    pred = np.zeros((3, 3, 5), bool)
    ref = np.zeros((3, 3, 5), bool)
    pred[1, 1, 1] = True
    ref[1, 1, 3] = True
    return pred, ref


@pytest.mark.parametrize("method", ["scan", "kdtree", "edt"])
def test_nsd_counts_a_distance_equal_to_the_tolerance_as_within(method):
    """M10: d <= tau, and a tie must not depend on float rounding or the method."""
    pred, ref = _two_voxels()
    sd = surface_distances(pred, ref, TIE_SPACING, connectivity=6, method=method)
    assert sd.nsd(0.6) == 1.0
    assert sd.nsd(0.59) == 0.0  # just below the distance: neither voxel is within
    assert nsd(pred, ref, TIE_SPACING, tolerance_mm=0.6) == 1.0


def test_nsd_tie_on_the_in_plane_axes_of_non_square_pixels():
    """Spacing (0.7, 1.3, 2.5): one voxel 3 columns away is 2.1 mm away, not 3.9 or 7.5."""
    pred = np.zeros((6, 6, 3), bool)
    ref = np.zeros((6, 6, 3), bool)
    pred[1, 2, 1] = True
    ref[4, 2, 1] = True
    sd = surface_distances(pred, ref, (0.7, 1.3, 2.5), connectivity=6)
    assert sd.pred_to_ref.tolist() == pytest.approx([2.1], abs=1e-6)
    assert sd.nsd(2.1) == 1.0 and sd.nsd(2.0) == 0.0


def _liver_only(shape=(6, 6, 4), shift: int = 0) -> np.ndarray:
    lab = np.zeros(shape, np.uint8)
    lab[1 + shift : 4 + shift, 1:4, 1:3] = 1
    return lab


def test_global_dice_of_a_set_without_tumour_anywhere_is_one():
    """M16: no tumour in any reference or prediction: tumour global Dice is 1 (as per-case
    Dice of an empty pair), the liver's is 2 * sum(I) / sum(|P| + |R|) by hand."""
    acc = SetAccumulator()
    acc.add(ScoredCase("a", score_case(_liver_only(), _liver_only(), (1.0, 1.0, 1.0))))
    acc.add(ScoredCase("b", score_case(_liver_only(shift=1), _liver_only(), (1.0, 1.0, 1.0))))
    regions = acc.summary()["regions"]
    assert regions["tumour"]["dice_global"] == 1.0
    # case a: 18 of 18 voxels; case b: 12 of 18 overlap -> 2 * (18 + 12) / (36 + 36)
    assert regions["liver"]["dice_global"] == pytest.approx(60 / 72)


def test_global_dice_pools_voxels_not_cases():
    """M17: one large perfect case and one small missed one: pooled 2*27/(27+27+1) is near 1,
    the per-case mean is 0.5."""
    ref_big = np.zeros((5, 5, 5), np.uint8)
    ref_big[1:4, 1:4, 1:4] = 2
    ref_small = np.zeros((5, 5, 5), np.uint8)
    ref_small[2, 2, 2] = 2
    acc = SetAccumulator()
    acc.add(ScoredCase("big", score_case(ref_big, ref_big, (1.0, 1.0, 1.0))))
    acc.add(ScoredCase("small", score_case(np.zeros_like(ref_small), ref_small, (1.0, 1.0, 1.0))))
    tumour = acc.summary()["regions"]["tumour"]
    assert tumour["dice_global"] == pytest.approx(54 / 55)
    assert tumour["dice_per_case"] == pytest.approx(0.5)


def test_default_nsd_tolerance_is_two_mm():
    """M44: NSD's default tolerance is 2 mm (docs/metrics.md): voxels 1.5 mm apart are
    within it, 2.5 mm apart are not."""
    pred = np.zeros((5, 3, 3), bool)
    ref = np.zeros((5, 3, 3), bool)
    pred[1, 1, 1] = True
    ref[2, 1, 1] = True
    assert nsd(pred, ref, (1.5, 1.0, 1.0)) == 1.0
    assert nsd(pred, ref, (2.5, 1.0, 1.0)) == 0.0


def test_any_overlap_detection_needs_an_overlap():
    """M31: one lesion found, one missed entirely: at any overlap 1 TP, 1 FN, 0 FP."""
    from e2net_eval.metrics.lesions import match_lesions

    ref = np.zeros((9, 9, 3), bool)
    ref[1:3, 1:3, 1] = True  # lesion A
    ref[6:8, 6:8, 1] = True  # lesion B, nothing predicted near it
    pred = np.zeros_like(ref)
    pred[1:3, 1:3, 1] = True
    m = match_lesions(pred, ref)
    assert (m.any_overlap.tp, m.any_overlap.fn, m.any_overlap.fp) == (1, 1, 0)
    assert (m.at_iou.tp, m.at_iou.fn, m.at_iou.fp) == (1, 1, 0)


def test_volumes_in_millilitres_use_the_voxel_volume():
    """M40: 12 voxels of 2 x 2 x 2.5 mm = 12 x 10 mm^3 = 0.12 ml."""
    acc = SetAccumulator()
    lab = _liver_only()  # 3 x 3 x 2 = 18 liver voxels
    lab[1:3, 1:3, 1:2] = 2  # ... of which 4 tumour
    acc.add(ScoredCase("a", score_case(lab, lab, (2.0, 2.0, 2.5))))
    rows = {r["region"]: r for r in acc.rows}
    assert rows["liver"]["ref_volume_ml"] == pytest.approx(18 * 10 / 1000)
    assert rows["tumour"]["pred_volume_ml"] == pytest.approx(4 * 10 / 1000)


def test_set_statistics_by_hand():
    """M42, M43: median of (1, 2, 10) is 2 (the mean is 4.33); a NaN is counted as
    undefined, not dropped silently."""
    from e2net_eval.metrics import stats

    s = stats([1.0, 2.0, 10.0, float("nan")])
    assert (s["median"], s["min"], s["max"], s["n"], s["n_undefined"]) == (2.0, 1.0, 10.0, 3, 1)
    assert s["mean"] == pytest.approx(13 / 3)
    assert s["std"] == pytest.approx(
        np.sqrt(((1 - 13 / 3) ** 2 + (2 - 13 / 3) ** 2 + (10 - 13 / 3) ** 2) / 3)
    )
