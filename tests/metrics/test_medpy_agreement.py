"""Randomised agreement with medpy (the library the LiTS scorer used), anisotropic spacing.

Overlaps within 1e-9; ASSD / RMSD / MSSD within 1e-6 relative, medpy run with the same
connectivity. medpy has no RMSD: the reference RMSD is built from medpy's own directed
surface distances (``medpy.metric.binary.__surface_distances``).
"""

from __future__ import annotations

import math

import medpy.metric.binary as mb  # a declared test dependency: imported, never skipped
import numpy as np
import pytest
from scipy import ndimage

from e2net_eval.metrics import dice, rvd, score_case, surface_distances, voe
from tests.helpers.random_cases import random_pair

_medpy_surface = getattr(mb, "__surface_distances")


CASES = list(range(40))


@pytest.mark.parametrize("seed", CASES)
def test_agreement(seed):
    rng = np.random.default_rng(1000 + seed)
    pred, ref = random_pair(rng)
    spacing = tuple(float(v) for v in rng.uniform(0.3, 3.0, size=3))
    connectivity = int(rng.integers(1, 4))
    assert abs(dice(pred, ref) - mb.dc(pred, ref)) <= 1e-9
    assert abs(voe(pred, ref) - (1.0 - mb.jc(pred, ref))) <= 1e-9
    assert abs(rvd(pred, ref) - mb.ravd(pred, ref)) <= 1e-9
    d_pr = _medpy_surface(pred, ref, spacing, connectivity)
    d_rp = _medpy_surface(ref, pred, spacing, connectivity)
    rmsd_ref = math.sqrt((np.sum(d_pr**2) + np.sum(d_rp**2)) / (d_pr.size + d_rp.size))
    for method in ("scan", "kdtree", "edt", "auto"):
        sd = surface_distances(pred, ref, spacing, connectivity, method=method)
        assert sd.assd() == pytest.approx(mb.assd(pred, ref, spacing, connectivity), rel=1e-6)
        assert sd.mssd() == pytest.approx(mb.hd(pred, ref, spacing, connectivity), rel=1e-6)
        assert sd.rmsd() == pytest.approx(rmsd_ref, rel=1e-6)
        assert sd.pred_to_ref.mean() == pytest.approx(
            mb.asd(pred, ref, spacing, connectivity), rel=1e-6
        )
        assert np.sort(sd.pred_to_ref) == pytest.approx(np.sort(d_pr), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_score_case_agrees_on_label_volumes(seed):
    """The cropped whole-case path equals medpy on the full volumes for both regions."""
    rng = np.random.default_rng(seed)
    shape = (40, 36, 24)
    base = ndimage.gaussian_filter(rng.random(shape), 3.0)
    ref = (base > np.quantile(base, 0.6)).astype(np.uint8)
    ref[(base > np.quantile(base, 0.93))] = 2
    noisy = base + rng.normal(0, 0.004, shape)
    pred = (noisy > np.quantile(noisy, 0.62)).astype(np.uint8)
    pred[(noisy > np.quantile(noisy, 0.94))] = 2
    spacing = tuple(float(v) for v in rng.uniform(0.5, 2.5, size=3))
    scores = score_case(pred, ref, spacing)
    for region, p, r in (("liver", pred >= 1, ref >= 1), ("tumour", pred == 2, ref == 2)):
        rs = scores.regions[region]
        assert abs(rs.dice - mb.dc(p, r)) <= 1e-9
        assert abs(rs.rvd - mb.ravd(p, r)) <= 1e-9
        assert rs.assd == pytest.approx(mb.assd(p, r, spacing, 2), rel=1e-6)
        assert rs.mssd == pytest.approx(mb.hd(p, r, spacing, 2), rel=1e-6)
