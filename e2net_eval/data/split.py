"""The paper's random train / validation split of the LiTS training cases (111 / 20)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from e2net_eval.data.dataset import natural_key
from e2net_eval.errors import InputError

PAPER_TRAIN, PAPER_VALIDATION = 111, 20
PAPER_TOTAL = PAPER_TRAIN + PAPER_VALIDATION


def n_validation(n: int) -> int:
    """Validation size for `n` cases: 20 of 131 as in the paper, round(n * 20 / 131), >= 1."""
    if n < 2:
        raise InputError(f"need at least 2 cases to split, got {n}")
    return int(min(n - 1, max(1, round(n * PAPER_VALIDATION / PAPER_TOTAL))))


def make_split(
    case_ids: Sequence[str],
    seed: int,
    *,
    exclude: Iterable[str] = (),
    n_val: int | None = None,
) -> dict:
    """Split `case_ids` at random (NumPy PCG64 seeded with `seed`) into train and validation.

    Ids in `exclude` (e.g. the 3DIRCADb patients found by `find_overlap`) are left out of
    both sets and listed under ``exclude``. The same ids and seed always give the same split,
    whatever order the ids come in. Returns ``{"seed", "n_cases", "train", "validation",
    "exclude", "method"}`` with ids sorted naturally.
    """
    ids = sorted({str(c) for c in case_ids}, key=natural_key)
    if len(ids) != len(case_ids):
        raise InputError("duplicate case ids given to the split")
    excluded = sorted({str(c) for c in exclude} & set(ids), key=natural_key)
    pool = [c for c in ids if c not in set(excluded)]
    k = n_validation(len(pool)) if n_val is None else int(n_val)
    if not 1 <= k < len(pool):
        raise InputError(f"validation size {k} impossible for {len(pool)} cases")
    order = np.random.default_rng(int(seed)).permutation(len(pool))
    val = {pool[i] for i in order[:k]}
    return {
        "seed": int(seed),
        "n_cases": len(pool),
        "train": [c for c in pool if c not in val],
        "validation": [c for c in pool if c in val],
        "exclude": excluded,
        "method": "numpy.random.default_rng(seed).permutation over naturally sorted ids; "
        "first n_val are validation; n_val = round(n * 20 / 131)",
    }
