"""The paper's random train / validation split of the LiTS training cases, and a training
run's one split (made here, or read and checked against the run's ``split.json``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from e2net_eval.data.dataset import natural_key
from e2net_eval.errors import InputError
from e2net_eval.rundir import SPLIT_JSON, split_lists
from e2net_eval.util.jsonio import dump_json, load_json

#: The paper's split of the LiTS training cases: training, validation, and all of them.
PAPER_TRAIN, PAPER_VALIDATION = 111, 20
PAPER_TOTAL = PAPER_TRAIN + PAPER_VALIDATION


def n_validation(n: int) -> int:
    """Validation size for `n` cases: the paper's share, round(n * PAPER_VALIDATION /
    PAPER_TOTAL), at least 1 and at most n - 1."""
    if n < 2:
        raise InputError(f"need at least 2 cases to split, got {n}")
    return int(min(n - 1, max(1, round(n * PAPER_VALIDATION / PAPER_TOTAL))))


def make_split(
    case_ids: Sequence[str],
    seed: int,
    *,
    exclude: Iterable[str] = (),
    n_val: int | None = None,
    strata: Mapping[str, object] | None = None,
) -> dict:
    """Split `case_ids` at random (NumPy PCG64 seeded with `seed`) into train and validation.

    Ids in `exclude` (e.g. the 3DIRCADb patients found by `find_overlap`) are left out of
    both sets and listed under ``exclude``. The same ids and seed always give the same split,
    whatever order the ids come in. Returns ``{"seed", "n_cases", "train", "validation",
    "exclude", "method"}`` with ids sorted naturally.

    `strata` (case id -> a label, e.g. whether the case has tumour) makes the split
    stratified: each stratum gives the validation set its share of `n_val` (largest
    remainders, ties to the larger stratum), drawn at random within it, so a small
    validation set has the population's mix instead of whatever a draw gives (12 of 52
    phantom cases drawn at random held 5 tumour-free cases where the set has a quarter).
    """
    ids = sorted({str(c) for c in case_ids}, key=natural_key)
    if len(ids) != len(case_ids):
        raise InputError("duplicate case ids given to the split")
    excluded = sorted({str(c) for c in exclude} & set(ids), key=natural_key)
    pool = [c for c in ids if c not in set(excluded)]
    k = n_validation(len(pool)) if n_val is None else int(n_val)
    if not 1 <= k < len(pool):
        raise InputError(f"validation size {k} impossible for {len(pool)} cases")
    rng = np.random.default_rng(int(seed))
    if strata is None:
        val = {pool[i] for i in rng.permutation(len(pool))[:k]}
    else:
        val = _stratified(pool, k, strata, rng)
    method = (
        "numpy.random.default_rng(seed).permutation over naturally sorted ids; "
        f"first n_val are validation; n_val = round(n * {PAPER_VALIDATION} / {PAPER_TOTAL})"
    )
    if strata is not None:
        method = (
            "stratified: n_val shared between the strata by largest remainders, each "
            "stratum's share drawn with numpy.random.default_rng(seed).permutation over its "
            "naturally sorted ids (strata in sorted order)"
        )
    out = {
        "seed": int(seed),
        "n_cases": len(pool),
        "train": [c for c in pool if c not in val],
        "validation": [c for c in pool if c in val],
        "exclude": excluded,
        "method": method,
    }
    if strata is not None:
        out["strata"] = {c: strata[c] for c in pool}
    return out


def _stratified(
    pool: list[str], k: int, strata: Mapping[str, object], rng: np.random.Generator
) -> set[str]:
    """`k` validation ids from `pool`, each stratum's share by largest remainders."""
    missing = [c for c in pool if c not in strata]
    if missing:
        raise InputError(f"no stratum for case(s) {missing[:5]}")
    groups: dict[str, list[str]] = {}
    for c in pool:
        groups.setdefault(str(strata[c]), []).append(c)
    names = sorted(groups)
    exact = {g: k * len(groups[g]) / len(pool) for g in names}
    take = {g: int(exact[g]) for g in names}
    by_remainder = sorted(names, key=lambda g: (-(exact[g] - take[g]), -len(groups[g]), g))
    for g in by_remainder[: k - sum(take.values())]:
        take[g] += 1
    val: set[str] = set()
    for g in names:
        order = rng.permutation(len(groups[g]))
        val |= {groups[g][i] for i in order[: take[g]]}
    return val


def resolve_split(
    run_dir: Path, case_ids: list[str], split_path: str | Path | None, *, seed: int, write: bool
) -> tuple[list[str], list[str]]:
    """A training run's split: from `split_path`, else ``RUN/split.json``, else `make_split`
    of `case_ids` seeded with `seed` (the split seed, independent of the training seed).

    A run has one split: a different `split_path` for an existing run is an input error.
    Only the writing process (`write`) saves ``RUN/split.json``.
    """
    saved = Path(run_dir) / SPLIT_JSON
    if split_path is not None:
        try:
            split = load_json(split_path)
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read split: {exc}", path=split_path) from exc
        if saved.is_file() and split_lists(load_json(saved), saved) != split_lists(
            split, split_path
        ):
            raise InputError(f"the run already has a different split ({saved})", path=split_path)
    elif saved.is_file():
        split = load_json(saved)
    else:
        split = make_split(case_ids, seed)
    train, val = split_lists(split, split_path or saved)
    missing = sorted(set(train + val) - set(case_ids))
    if missing:
        raise InputError(
            f"{len(missing)} split case(s) not in the dataset, e.g. {missing[0]!r}",
            path=split_path or saved,
        )
    if write and not saved.is_file():
        dump_json(saved, split)
    return train, val
