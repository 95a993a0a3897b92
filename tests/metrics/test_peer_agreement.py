"""HD95, pooled HD95, NSD and MASD against the tools people run beside us, on 40 random
anisotropic pairs each, with the 6-neighbourhood surface those tools use.

- MONAI 1.6 ``compute_hausdorff_distance(percentile=95)`` and ``compute_surface_dice``
  (voxel-counting mode): same surfaces and distances (MONAI's directed distance arrays
  equal ours within 1e-6 relative; it returns them as float32), so NSD agrees within
  1e-6. HD95 agrees within 1e-6 relative plus the one difference that float32 makes:
  MONAI interpolates the percentile in float32, where the position q(n-1) is rounded to
  float32 (ulp 1.2e-4 at n = 2000), which moves the result by up to that ulp times the
  gap between the two distances it interpolates; the test allows exactly that.
- medpy ``hd95`` (pooled percentile) and ``asd`` in both directions (their mean is MASD,
  which is also medpy < 0.5's ``assd`` and MetricsReloaded's ``masd``; medpy 0.5 changed
  ``assd`` to the pooled mean, our LiTS ASSD): agree within 1e-6 relative.
- DeepMind ``surface-distance``: a different surface. Its surface elements ("surfels") sit
  on the voxel-corner grid, at the corners whose eight voxels are mixed inside and outside,
  and NSD weights them by area. The tests check what that difference must be: MONAI's
  ``use_subvoxels=True`` mode implements DeepMind's surfels over the same distance code and
  reproduces DeepMind, so the only difference is the surface element; every DeepMind
  surfel is half a voxel diagonal from a voxel of our 26-neighbourhood surface and vice
  versa, so directed maxima differ by at most one voxel diagonal; and on concentric
  spheres both NSDs are the same step function of the tolerance outside that band.

MetricsReloaded is not on the package registry, so it is not run here: its ``hd_perc``
(maximum of the two directed ``np.percentile`` values) is MONAI's definition and its
``masd`` (half the sum of the two directed means) is the medpy ``asd`` mean tested below.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import surface_distance as deepmind
import torch
from medpy.metric import binary as mb
from monai.metrics import compute_hausdorff_distance, compute_surface_dice
from monai.metrics.utils import get_edge_surface_distance

from e2net_eval.metrics import hd95, hd95_pooled, masd, nsd
from e2net_eval.metrics.surface import surface_distances
from tests.helpers.random_cases import random_pair, random_spacing

CASES = range(40)
RTOL = 1e-6
# surface-distance 0.1 imports scipy.ndimage's deprecated namespaces
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _monai(mask: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(mask[None, None].astype(np.float32))


def _case(seed: int):
    rng = np.random.default_rng(7000 + seed)
    pred, ref = random_pair(rng)
    return pred, ref, random_spacing(rng), float(rng.uniform(0.3, 4.0))


def _float32_percentile_slack(d: np.ndarray, q: float) -> float:
    """How far float32 rounding of the position q(n-1) can move an interpolated percentile."""
    s = np.sort(d)
    pos = q / 100 * (s.size - 1)
    lo = int(pos)
    gap = s[min(lo + 1, s.size - 1)] - s[lo]
    return float(np.spacing(np.float32(pos))) * float(gap)


@pytest.mark.parametrize("seed", CASES)
def test_monai_hd95_and_nsd(seed):
    pred, ref, spacing, tau = _case(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m_hd95 = compute_hausdorff_distance(
            _monai(pred), _monai(ref), include_background=True, percentile=95, spacing=spacing
        ).item()
        m_nsd = compute_surface_dice(
            _monai(pred), _monai(ref), [tau], include_background=True, spacing=spacing
        ).item()
        _, (m_pr, m_rp), _ = get_edge_surface_distance(
            torch.as_tensor(pred), torch.as_tensor(ref), spacing=spacing, symmetric=True
        )
    for method in ("scan", "kdtree", "edt"):
        sd = surface_distances(pred, ref, spacing, 1, method=method)
        # the same surfaces and the same distances, element for element
        for ours, theirs in ((sd.pred_to_ref, m_pr), (sd.ref_to_pred, m_rp)):
            assert np.sort(ours) == pytest.approx(np.sort(theirs.numpy()), rel=RTOL, abs=1e-9)
        slack = max(_float32_percentile_slack(d, 95) for d in (sd.pred_to_ref, sd.ref_to_pred))
        assert abs(sd.hd_percentile() - m_hd95) <= RTOL * m_hd95 + slack
        assert sd.nsd(tau) == pytest.approx(m_nsd, rel=RTOL, abs=1e-7)
    assert hd95(pred, ref, spacing) == surface_distances(pred, ref, spacing, 1).hd_percentile()
    assert nsd(pred, ref, spacing, tau) == pytest.approx(m_nsd, rel=RTOL, abs=1e-7)


@pytest.mark.parametrize("seed", CASES)
def test_medpy_hd95_pooled_and_masd(seed):
    pred, ref, spacing, _ = _case(seed)
    assert hd95_pooled(pred, ref, spacing) == pytest.approx(
        mb.hd95(pred, ref, spacing, 1), rel=RTOL
    )
    directed_means = mb.asd(pred, ref, spacing, 1), mb.asd(ref, pred, spacing, 1)
    assert masd(pred, ref, spacing) == pytest.approx(0.5 * sum(directed_means), rel=RTOL)
    # the pooled ASSD differs from MASD whenever the two surfaces differ in size
    sd = surface_distances(pred, ref, spacing, 1)
    if sd.pred_to_ref.size != sd.ref_to_pred.size and sd.assd() > 0:
        assert sd.assd() != pytest.approx(sd.masd(), rel=1e-9)


def test_monai_empty_rules_differ_as_documented():
    """MONAI gives NaN (HD95) and NaN (NSD) for two empty masks and inf / 0 for one empty
    mask; ours: 0 / 1 for both empty, NaN / 0 for one empty (docs/metrics.md)."""
    full = np.zeros((6, 6, 6), bool)
    full[1:4, 1:4, 1:4] = True
    empty = np.zeros_like(full)
    sp = (1.0, 1.0, 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m_both = compute_hausdorff_distance(
            _monai(empty), _monai(empty), include_background=True, percentile=95, spacing=sp
        ).item()
        m_nsd_one = compute_surface_dice(
            _monai(full), _monai(empty), [1.0], include_background=True, spacing=sp
        ).item()
    assert math.isnan(m_both) and hd95(empty, empty, sp) == 0.0
    assert m_nsd_one == 0.0 and nsd(full, empty, sp) == 0.0
    assert math.isnan(hd95(full, empty, sp))


@pytest.mark.parametrize("seed", range(30))
def test_deepmind_differs_only_by_its_surface_elements(seed):
    pred, ref, spacing, tau = _case(seed)
    dm = deepmind.compute_surface_distances(ref, pred, spacing)
    dm_nsd = deepmind.compute_surface_dice_at_tolerance(dm, tau)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monai_surfels = compute_surface_dice(
            _monai(pred),
            _monai(ref),
            [tau],
            include_background=True,
            spacing=spacing,
            use_subvoxels=True,
        ).item()
    # Same surfels, same distances: DeepMind = MONAI's subvoxel mode (MONAI builds the
    # surfel areas in float16/float32, hence 1e-5).
    assert dm_nsd == pytest.approx(monai_surfels, abs=1e-5)
    # Every surfel (a voxel corner) is half a voxel diagonal from a voxel of the
    # 26-neighbourhood surface and vice versa: each directed maximum moves by at most one
    # voxel diagonal.
    diag = math.sqrt(sum(s * s for s in spacing))
    ours = surface_distances(pred, ref, spacing, connectivity=3)
    dm_pr, dm_rp = dm["distances_pred_to_gt"], dm["distances_gt_to_pred"]
    assert abs(dm_pr.max() - ours.pred_to_ref.max()) <= diag * (1 + 1e-6)
    assert abs(dm_rp.max() - ours.ref_to_pred.max()) <= diag * (1 + 1e-6)


def _ball(shape, spacing, centre, radius):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    d2 = sum((g * s - c) ** 2 for g, s, c in zip(grids, spacing, centre, strict=True))
    return d2 <= radius**2


@pytest.mark.parametrize("spacing", [(0.5, 0.6, 0.8), (0.4, 0.4, 1.0)])
def test_nsd_concentric_spheres_step_at_the_gap(spacing):
    """Balls of 12 and 8 mm about one centre: the continuous surfaces are 4 mm apart, so
    the continuous NSD is 0 below 4 mm and 1 from 4 mm on. Voxel surfaces lie within one
    voxel diagonal t of the sphere, surfels within t / 2 more: both NSDs are exactly 0 below
    4 - 2t and exactly 1 above 4 + 3t, and differ only inside that band."""
    t = math.sqrt(sum(s * s for s in spacing))
    shape = tuple(int(32 / s) for s in spacing)
    centre = (15.2, 15.9, 16.1)
    outer, inner = _ball(shape, spacing, centre, 12.0), _ball(shape, spacing, centre, 8.0)
    dm = deepmind.compute_surface_distances(outer, inner, spacing)
    for tau in (4.0 - 2 * t - 0.05, 4.0 + 3 * t + 0.05):
        expected = 0.0 if tau < 4.0 else 1.0
        assert nsd(inner, outer, spacing, tau) == expected
        assert deepmind.compute_surface_dice_at_tolerance(dm, tau) == expected
    # inside the band both move from 0 to 1 around the gap
    assert 0.0 < nsd(inner, outer, spacing, 4.0) < 1.0
    assert 0.0 < deepmind.compute_surface_dice_at_tolerance(dm, 4.0) < 1.0


@pytest.mark.parametrize("seed", range(30))
def test_score_case_columns_agree_with_the_tools(seed):
    """The columns `evaluate` writes (score_case: the case crop, both neighbourhoods at
    once, lesions labelled once) against MONAI, medpy and panoptica on the full volumes."""
    from e2net_eval.metrics import score_case
    from e2net_eval.metrics.lesions import label_components
    from tests.helpers.random_cases import random_labels
    from tests.metrics.test_panoptic import _panoptica

    rng = np.random.default_rng(8200 + seed)
    pred, ref = random_labels(rng)
    spacing = random_spacing(rng)
    tau = float(rng.uniform(0.5, 4.0))
    scores = score_case(pred, ref, spacing, nsd_tolerance=tau)
    for region, p, r in (("liver", pred >= 1, ref >= 1), ("tumour", pred == 2, ref == 2)):
        got = scores.regions[region].values
        if not (p.any() and r.any()):  # our empty rules (MONAI gives NaN/inf here)
            both_empty = not (p.any() or r.any())
            assert got["hd95"] == 0.0 if both_empty else math.isnan(got["hd95"])
            assert got["nsd"] == (1.0 if both_empty else 0.0)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m_hd95 = compute_hausdorff_distance(
                _monai(p), _monai(r), include_background=True, percentile=95, spacing=spacing
            ).item()
            m_nsd = compute_surface_dice(
                _monai(p), _monai(r), [tau], include_background=True, spacing=spacing
            ).item()
        sd = surface_distances(p, r, spacing, 1)
        slack = max(_float32_percentile_slack(d, 95) for d in (sd.pred_to_ref, sd.ref_to_pred))
        assert abs(got["hd95"] - m_hd95) <= RTOL * m_hd95 + slack, region
        assert got["nsd"] == pytest.approx(m_nsd, rel=RTOL, abs=1e-7), region
        assert got["hd95_pooled"] == pytest.approx(mb.hd95(p, r, spacing, 1), rel=RTOL), region
        means = mb.asd(p, r, spacing, 1), mb.asd(r, p, spacing, 1)
        assert got["masd"] == pytest.approx(0.5 * sum(means), rel=RTOL), region
    p_lab, _ = label_components(pred == 2, 6)
    r_lab, _ = label_components(ref == 2, 6)
    res = _panoptica(p_lab.astype(np.uint32), r_lab.astype(np.uint32))
    pan = scores.panoptic
    assert (pan.tp, pan.fp, pan.fn) == (res.tp, res.fp, res.fn)
    if pan.tp:
        assert (pan.rq, pan.sq, pan.pq) == pytest.approx((res.rq, res.sq, res.pq), rel=1e-12)
