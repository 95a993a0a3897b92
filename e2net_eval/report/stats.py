"""Statistics the paper does not give: bootstrap intervals and paired tests between configs.

Percentile bootstrap over cases (every case resampled with replacement), seeded, so a report
is reproducible to the digit. With few cases (phantom runs, 20 validation cases) intervals
are wide and tests have little power: a non-significant difference is not evidence of none.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as _sstats

N_RESAMPLES = 2000
BOOTSTRAP_SEED = 2020
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap interval over `n` cases (None when undefined)."""

    value: float | None
    low: float | None
    high: float | None
    n: int


def _clean(values) -> np.ndarray:
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    return arr[np.isfinite(arr)]


def bootstrap(
    values,
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = LEVEL,
) -> Interval:
    """Percentile bootstrap interval of `statistic` over the finite entries of `values`.

    `values` may be 1-D (one value per case) or 2-D `(n_cases, k)` when the statistic needs
    several numbers per case (global Dice: intersection and sizes). Undefined (None/NaN)
    entries are left out and the interval is over the remaining n.
    """
    if isinstance(values, np.ndarray) and values.ndim == 2:
        arr = values.astype(float)
        arr = arr[np.all(np.isfinite(arr), axis=1)]
    else:
        arr = _clean(values)
    n = len(arr)
    if n == 0:
        return Interval(None, None, None, 0)
    point = float(statistic(arr))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    if statistic is np.mean:  # the common case, vectorised
        boot = arr[idx].mean(axis=1)
    elif statistic is rmse:
        boot = np.sqrt(np.square(arr[idx]).mean(axis=1))
    else:
        boot = np.array([statistic(arr[i]) for i in idx], dtype=float)
    alpha = (1 - level) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    return Interval(point, float(low), float(high), n)


def rmse(err: np.ndarray) -> float:
    """sqrt(mean(err^2)) of a 1-D array of per-case errors."""
    return float(np.sqrt(np.mean(np.square(err))))


def global_dice(rows: np.ndarray) -> float:
    """2ΣI/Σ(P+R) from rows (intersection, pred voxels, ref voxels); 1.0 when all empty."""
    denom = rows[:, 1].sum() + rows[:, 2].sum()
    return 1.0 if denom == 0 else float(2 * rows[:, 0].sum() / denom)


def _differences(values_a, values_b, what: str) -> np.ndarray:
    """b - a where both are defined (same positions; None/NaN in either: left out)."""
    xa = np.asarray([np.nan if v is None else v for v in values_a], dtype=float)
    xb = np.asarray([np.nan if v is None else v for v in values_b], dtype=float)
    if xa.shape != xb.shape:
        raise ValueError(f"{what}: {xa.shape} vs {xb.shape}")
    keep = np.isfinite(xa) & np.isfinite(xb)
    return xb[keep] - xa[keep]


@dataclass(frozen=True)
class PairedTest:
    """B versus A on the same cases: mean difference (B - A) with its bootstrap interval and
    the Wilcoxon signed-rank p-value (two-sided; None when every difference is 0)."""

    a: str
    b: str
    n: int
    mean_diff: float | None
    low: float | None
    high: float | None
    wilcoxon_p: float | None


def paired_test(a: str, b: str, values_a, values_b, *, seed: int = BOOTSTRAP_SEED) -> PairedTest:
    """Compare two configurations case by case (cases undefined in either are left out)."""
    diff = _differences(values_a, values_b, "paired test needs the same cases")
    interval = bootstrap(diff, seed=seed)
    p = None
    if diff.size and np.any(diff != 0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # small-n normal-approximation notes
            p = float(_sstats.wilcoxon(diff).pvalue)
        if not math.isfinite(p):
            p = None
    return PairedTest(a, b, int(diff.size), interval.value, interval.low, interval.high, p)


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values of one family of tests, in the input order.

    A test without a p-value (every difference 0) stays None but counts in the family as
    p = 1 (conservative: it was a comparison made). Adjusted p = max over the i smallest of
    (m - rank + 1) * p, capped at 1.
    """
    m = len(pvalues)
    filled = [1.0 if p is None else float(p) for p in pvalues]
    order = sorted(range(m), key=lambda i: filled[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * filled[i]))
        adjusted[i] = running
    return [None if p is None else adjusted[i] for i, p in enumerate(pvalues)]


@dataclass(frozen=True)
class Spread:
    """A figure over replicates: how many, their mean, the between-replicate standard
    deviation (n - 1 in the denominator; None for one replicate) and the range."""

    n: int
    mean: float | None
    sd: float | None
    low: float | None
    high: float | None


def spread(values) -> Spread:
    """`Spread` of the finite entries of `values` (one per replicate)."""
    arr = _clean(values)
    if arr.size == 0:
        return Spread(0, None, None, None, None)
    sd = float(np.std(arr, ddof=1)) if arr.size > 1 else None
    return Spread(int(arr.size), float(arr.mean()), sd, float(arr.min()), float(arr.max()))


@dataclass(frozen=True)
class Wins:
    """B against A over replicates (each replicate: one figure of each, e.g. Dice per case):
    in how many B is higher, equal, lower; the share of replicates B wins (a tie counts as
    half); the spread of the differences B - A; the two-sided sign test p of "B and A are
    equally likely to win" (ties left out; None when every replicate tied)."""

    n: int
    wins: int
    ties: int
    fraction: float | None
    diff: Spread
    sign_p: float | None


def wins(values_a, values_b) -> Wins:
    """Replicate by replicate (same positions; undefined in either: left out)."""
    diff = _differences(values_a, values_b, "wins need the same replicates")
    n = int(diff.size)
    won, tied = int(np.sum(diff > 0)), int(np.sum(diff == 0))
    fraction = None if n == 0 else (won + 0.5 * tied) / n
    decided = n - tied
    sign_p = None if decided == 0 else float(_sstats.binomtest(won, decided, 0.5).pvalue)
    return Wins(n, won, tied, fraction, spread(diff), sign_p)
