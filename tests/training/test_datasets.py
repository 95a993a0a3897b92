"""Slice cache, sampling plans, items and the schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from e2net_eval.training.cache import SliceCache
from e2net_eval.training.datasets import (
    PlanBatches,
    SliceDataset,
    SliceSpec,
    plan_epoch,
    steps_per_epoch,
)
from e2net_eval.training.schedule import DECREASE, NONE, STOP, Plateau


@pytest.fixture(scope="module")
def cached(lits6_phantom, tmp_path_factory):
    cache = SliceCache(tmp_path_factory.mktemp("cache"), lits6_phantom)
    ids = cache.case_ids()
    return cache, ids, cache.open(ids, progress=False)


def test_cache_matches_the_reader_and_is_reused(cached, lits6_phantom):
    from e2net_eval.data import open_dataset, window_hu
    from e2net_eval.runtime.orientation import Orientation

    cache, ids, cases = cached
    ds = open_dataset(lits6_phantom)
    case = ds.load(ids[0])
    o = Orientation.from_affine(case.affine)
    c = cases[0]
    assert isinstance(c.image, np.memmap)
    assert np.array_equal(np.asarray(c.label), o.slices(case.label))
    assert np.allclose(np.asarray(c.image, np.float32), o.slices(window_hu(case.image)), atol=6e-4)
    # boxes: the liver box of every slice, -1 rows where there is none
    for z in range(c.n_slices):
        liver = c.label[z] >= 1
        if liver.any():
            rows, cols = np.nonzero(liver)
            assert tuple(c.boxes[z]) == (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1)
        else:
            assert tuple(c.boxes[z]) == (-1, -1, -1, -1)
    stamp = (cache.dir / ids[0] / "image.npy").stat().st_mtime_ns
    cache.open(ids[:1], progress=False)
    assert (cache.dir / ids[0] / "image.npy").stat().st_mtime_ns == stamp


def test_plan_stage1_has_all_liver_and_a_proportion_of_others(cached):
    _, _, cases = cached
    spec = SliceSpec(stage=1, input_size=112, in_channels=1, neg_ratio=0.5)
    plan = plan_epoch(cases, spec, [0, 1, 0])
    n_liver = sum(len(c.liver_slices()) for c in cases)
    is_liver = np.array([cases[ci].boxes[z, 0] >= 0 for ci, z in plan])
    assert is_liver.sum() == n_liver
    assert (~is_liver).sum() == min(round(0.5 * n_liver), sum(len(c.other_slices()) for c in cases))
    assert np.array_equal(plan, plan_epoch(cases, spec, [0, 1, 0]))  # seeded
    assert not np.array_equal(plan, plan_epoch(cases, spec, [0, 1, 1]))  # new each epoch
    spec2 = SliceSpec(stage=2, input_size=64, in_channels=1)
    plan2 = plan_epoch(cases, spec2, [0, 1, 0])
    assert len(plan2) == n_liver and all(cases[ci].boxes[z, 0] >= 0 for ci, z in plan2)


@pytest.mark.parametrize("edge", ["none", "dist"])
def test_stage2_items(cached, edge):
    _, _, cases = cached
    spec = SliceSpec(stage=2, input_size=64, in_channels=3, edge_target=edge, margin=(2, 15))
    ds = SliceDataset(cases, spec)
    plan = plan_epoch(cases, spec, [0, 1, 0])
    item = ds[(int(plan[0][0]), int(plan[0][1]), (0, 3, 0, 0))]
    assert item["image"].shape == (3, 64, 64) and item["mask"].shape == (2, 64, 64)
    assert item["mask"][0].any()  # the liver box is in the crop
    assert torch.all(item["mask"][1] <= item["mask"][0])  # tumour inside liver
    if edge == "dist":
        assert item["edge"].shape == (2, 64, 64) and float(item["edge"].max()) <= 1.0
    again = ds[(int(plan[0][0]), int(plan[0][1]), (0, 3, 0, 0))]
    assert torch.equal(item["image"], again["image"])  # a sample is a function of its key


def test_stage1_items_and_context(cached):
    _, _, cases = cached
    spec = SliceSpec(stage=1, input_size=112, in_channels=3)
    item = SliceDataset(cases, spec)[(0, 0, (0, 3, 0, 5))]
    assert item["image"].shape == (3, 112, 112) and item["mask"].shape == (1, 112, 112)
    # slice 0: the context below is clamped to slice 0 itself
    assert torch.equal(item["image"][0], item["image"][1])


def test_batches_shard_the_global_batch():
    plan = np.stack([np.zeros(20, int), np.arange(20)], axis=1)
    whole = list(PlanBatches(plan, batch_size=4, steps=3, item_words=[0]))
    parts = [
        list(PlanBatches(plan, batch_size=4, steps=3, item_words=[0], rank=r, world=2))
        for r in (0, 1)
    ]
    for step in range(3):
        assert parts[0][step] + parts[1][step] == whole[step]
    resumed = list(PlanBatches(plan, batch_size=4, steps=3, item_words=[0], start_step=1))
    assert resumed == whole[1:]
    assert steps_per_epoch(20, 8, None) == 2 and steps_per_epoch(20, 8, 1) == 1
    assert steps_per_epoch(3, 8, None) == 1
    short = list(PlanBatches(plan[:3], batch_size=4, steps=1, item_words=[0]))
    assert [s[1] for s in short[0]] == [0, 1, 2, 0]  # cyclic when shorter than a batch


def test_plateau_two_decreases_then_stop():
    p = Plateau(patience=2)
    assert [p.step(v) for v in (1.0, 0.9, 0.95, 0.95)] == [NONE, NONE, NONE, DECREASE]
    assert [p.step(v) for v in (0.8, 0.85, 0.85)] == [NONE, NONE, DECREASE]
    assert [p.step(v) for v in (0.9, 0.9)] == [NONE, STOP]
    q = Plateau(patience=2)
    q.load_state_dict(p.state_dict())
    assert q == p


def test_cached_case_pickles_as_a_reference(cached):
    import pickle

    _, _, cases = cached
    blob = pickle.dumps(cases[0])
    assert len(blob) < 10_000  # the slices are re-mapped, not copied
    back = pickle.loads(blob)
    assert isinstance(back.image, np.memmap) and np.array_equal(back.label, cases[0].label)


def test_stage2_oversamples_tumour_slices_to_the_stated_share(cached):
    """At least `tumour_fraction` of a stage-2 epoch shows tumour; every liver slice is still
    visited once; without the setting the plan is the natural mix."""
    _, _, cases = cached
    tumour = {(ci, int(z)) for ci, c in enumerate(cases) for z in c.tumour_slices()}
    n_liver = sum(len(c.liver_slices()) for c in cases)
    assert 0 < len(tumour) < 0.5 * n_liver  # the phantom's natural share is below one half
    natural = plan_epoch(cases, SliceSpec(stage=2, input_size=64, in_channels=1), [0, 1, 0])
    assert len(natural) == n_liver
    spec = SliceSpec(stage=2, input_size=64, in_channels=1, tumour_fraction=0.5)
    plan = plan_epoch(cases, spec, [0, 1, 0])
    shows = np.array([(int(ci), int(z)) in tumour for ci, z in plan])
    assert shows.mean() >= 0.5 and shows.mean() < 0.5 + 1 / len(plan) + 1e-9
    liver = {(ci, int(z)) for ci, c in enumerate(cases) for z in c.liver_slices()}
    assert liver <= {(int(ci), int(z)) for ci, z in plan}  # every liver slice is still there
    assert np.array_equal(plan, plan_epoch(cases, spec, [0, 1, 0]))  # seeded
    # tumour pixels per slice come from the cache, not from scanning labels
    for c in cases:
        assert np.array_equal(c.tumour, (np.asarray(c.label) == 2).sum(axis=(1, 2)))
