"""Rankings that say how sure they are: challengeR 1.0.5's methods as pure functions on a
long frame (``task, entry, case, value``; ``higher[task]``: larger is better). Returns pandas
frames; reads no files, draws nothing. Definitions and differences: docs/reports.md, "rank".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr
from scipy.stats import rankdata

from e2net_eval.errors import InputError

MEAN, MEDIAN = "mean", "median"
RANK_THEN_AGGREGATE, TEST_THEN_RANK = "rank_then_aggregate", "test_then_rank"
#: The methods every ranking reports, in output order.
METHODS = (MEAN, MEDIAN, RANK_THEN_AGGREGATE, TEST_THEN_RANK)
P_ADJUST = ("none", "holm", "bonferroni")
COLUMNS = ["task", "entry", "case", "value"]


@dataclass(frozen=True)
class Options:
    """How to rank: significance level, p-value adjustment, missing-value policy
    (``"drop"``, ``"worst"`` or a number as text), methods (names of `METHODS` or
    ``quantile_<p>`` such as ``quantile_0.25``)."""

    alpha: float = 0.05
    p_adjust: str = "none"
    missing: str = "drop"
    methods: tuple[str, ...] = METHODS


# -- small exact helpers -----------------------------------------------------------------------
def exact_mean(values: np.ndarray) -> float:
    """The correctly rounded sum over n (R's ``mean`` agrees on ties where numpy may not)."""
    return math.fsum(values) / len(values) if len(values) else math.nan


def quantile7(values: np.ndarray, p: float) -> float:
    """R's ``quantile(x, p)`` (type 7), with R's arithmetic ``(1-h)*x[lo] + h*x[hi]``."""
    x = np.sort(np.asarray(values, dtype=float))
    if not len(x):
        return math.nan
    index = (len(x) - 1) * p
    lo, hi = math.floor(index), math.ceil(index)
    h = index - lo
    if h == 0 or x[hi] == x[lo]:
        return float(x[lo])
    return float((1 - h) * x[lo] + h * x[hi])


def aggregator(method: str) -> Callable[[np.ndarray], float]:
    """The aggregate of an aggregate-then-rank method name."""
    if method == MEAN:
        return exact_mean
    if method == MEDIAN:
        return lambda v: quantile7(v, 0.5)
    if method.startswith("quantile_"):
        try:
            p = float(method.removeprefix("quantile_"))
        except ValueError:
            p = math.nan
        if 0.0 <= p <= 1.0:
            return lambda v: quantile7(v, p)
    raise InputError(
        f"unknown ranking method {method!r} (one of {', '.join(METHODS)} or quantile_<p>)"
    )


# -- input checks and missing values -------------------------------------------------------------
def check_frame(frame: pd.DataFrame, higher: Mapping[str, bool]) -> pd.DataFrame:
    """The frame with the columns in order; bad input raises `InputError` (one line)."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"ranking frame lacks columns {', '.join(missing)}")
    out = frame[COLUMNS].copy()
    out["value"] = pd.to_numeric(out["value"], errors="coerce").astype(float)
    for task, rows in out.groupby("task", sort=False):
        if task not in higher:
            raise InputError(f"task {task!r}: no direction (higher or lower is better)")
        if rows["entry"].nunique() < 2:
            raise InputError(f"task {task!r}: a ranking needs at least two entries")
        if rows["value"].isna().all():
            raise InputError(f"task {task!r}: every value is undefined")
        dup = rows.duplicated(["entry", "case"])
        if dup.any():
            r = rows[dup].iloc[0]
            raise InputError(f"task {task!r}: case {r['case']} given twice for {r['entry']}")
    return out


def complete(frame: pd.DataFrame) -> pd.DataFrame:
    """Every (entry, case) of each task present: a case an entry lacks becomes NaN."""
    parts = []
    for task, rows in frame.groupby("task", sort=False):
        grid = pd.MultiIndex.from_product(
            [rows["entry"].unique(), rows["case"].unique()], names=["entry", "case"]
        )
        full = rows.set_index(["entry", "case"])["value"].reindex(grid).reset_index()
        full.insert(0, "task", task)
        parts.append(full)
    return pd.concat(parts, ignore_index=True)[COLUMNS]


def check_missing(policy: str) -> float | None:
    """The number of a numeric missing-value policy, None for ``drop`` and ``worst``;
    InputError for anything else."""
    if policy in ("drop", "worst"):
        return None
    try:
        number = float(policy)
    except ValueError:
        raise InputError(f"--missing must be drop, worst or a number, got {policy!r}") from None
    if math.isnan(number):
        raise InputError("--missing must not be NaN")
    return number


def apply_missing(frame: pd.DataFrame, higher: Mapping[str, bool], policy: str) -> pd.DataFrame:
    """Missing and undefined values by `policy`: ``drop`` the rows (challengeR's
    ``na.treat="na.rm"``), a number (``na.treat=<number>``), or ``worst``: kept as NaN
    here; `method_scores` gives them the task's worst observed value, and within a case
    the rank after every observed one (challengeR's rank-then-aggregate without na.treat)."""
    number = check_missing(policy)
    out = complete(frame)
    if policy == "drop":
        return out[out["value"].notna()].reset_index(drop=True)
    if number is not None:
        out["value"] = out["value"].fillna(number)
    return out


def matrix(rows: pd.DataFrame) -> tuple[list[str], list[str], np.ndarray]:
    """(entries, cases, values[entry, case]) of one task, NaN where a value is absent."""
    wide = rows.pivot(index="entry", columns="case", values="value")
    entries = list(dict.fromkeys(rows["entry"]))
    cases = list(dict.fromkeys(rows["case"]))
    wide = wide.reindex(index=entries, columns=cases)
    return entries, cases, wide.to_numpy(dtype=float)


# -- one task, many case samples at once -------------------------------------------------------
# Each function below takes `values[entry, case]` and `draws[b, k]` (case indices of sample b;
# the full data is the single draw ``arange(n_cases)``) and returns one row per draw.
def ranks_of(scores: np.ndarray, higher: bool) -> np.ndarray:
    """Ranks (ties ``min``) of each row of `scores`; NaN stays NaN and ranks after all."""
    s = np.where(np.isnan(scores), np.inf, -scores if higher else scores)
    out = rankdata(s, method="min", axis=-1).astype(float)
    return np.where(np.isnan(scores), np.nan, out)


def aggregate_scores(values: np.ndarray, draws: np.ndarray, method: str) -> np.ndarray:
    """scores[b, entry]: the aggregate of each entry over the cases of draw b (NaN skipped)."""
    if method == MEAN:
        if not np.isnan(values).any():
            n = draws.shape[1]
            return np.array([[math.fsum(row) / n for row in values[:, d].tolist()] for d in draws])
        return np.array([[exact_mean(row[~np.isnan(row)]) for row in values[:, d]] for d in draws])
    p = 0.5 if method == MEDIAN else float(method.removeprefix("quantile_"))
    x = np.sort(values[:, draws].transpose(1, 0, 2), axis=-1)  # (b, entry, k), NaN last
    n = (~np.isnan(x)).sum(axis=-1)
    index = np.maximum(n - 1, 0) * p
    lo, hi = np.floor(index).astype(int), np.ceil(index).astype(int)
    h = index - lo
    xlo = np.take_along_axis(x, lo[..., None], axis=-1)[..., 0]
    xhi = np.take_along_axis(x, hi[..., None], axis=-1)[..., 0]
    out = np.where((h == 0) | (xlo == xhi), xlo, (1 - h) * xlo + h * xhi)
    return np.where(n > 0, out, np.nan)


def case_ranks(values: np.ndarray, higher: bool, last: bool = False) -> np.ndarray:
    """ranks[entry, case]: the rank of each entry within each case (ties ``min``). NaN
    stays NaN, or with `last` gets the case's largest rank + 1 (challengeR's rankNA2)."""
    r = ranks_of(values.T, higher).T
    if last:
        with np.errstate(invalid="ignore"):
            top = np.nan_to_num(np.nanmax(np.where(np.isnan(r), -np.inf, r), axis=0), neginf=0.0)
        r = np.where(np.isnan(r), top[None, :] + 1, r)
    return r


def mean_ranks(ranks: np.ndarray, draws: np.ndarray, challenger: bool) -> np.ndarray:
    """scores[b, entry] of rank-then-aggregate. A case drawn k times counts k times; with
    `challenger`, as challengeR's bootstrap ranks its k copies together (one case id), the
    copies of an entry of rank r get rank k*(r-1)+1."""
    out = np.empty((len(draws), ranks.shape[0]))
    for b, d in enumerate(draws):
        if challenger:
            cases, k = np.unique(d, return_counts=True)
            r = ranks[:, cases]
            num = np.nansum(k * (k * (r - 1) + 1), axis=1)
            den = np.where(np.isnan(r), 0, k).sum(axis=1)
        else:
            r = ranks[:, d]
            num, den = np.nansum(r, axis=1), (~np.isnan(r)).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[b] = np.where(den > 0, num / den, np.nan)
    return out


def signed_rank(diffs: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-sided p-values of R's ``wilcox.test(x, exact=FALSE, correct=TRUE)`` where sample
    b holds case c ``counts[b, c]`` times and case c's difference is ``diffs[c]``:
    (p of "greater", p of "less"), one per sample. Zero and NaN differences are dropped
    (as R drops zeros and incomplete pairs); the variance has the tie correction; no
    difference left gives p = 1 both ways (R: z = -Inf / +Inf). Ranks come from the
    order of |diffs| once, with the counts summed per tie group: exact half-integers, the
    numbers R's ``rank(abs(x))`` gives on the expanded sample."""
    keep = np.flatnonzero(~np.isnan(diffs) & (diffs != 0))
    size = np.abs(diffs[keep])
    order = np.argsort(size, kind="stable")
    cases, size = keep[order], size[order]
    p_one = np.ones(counts.shape[0])
    if not len(cases):
        return p_one, p_one.copy()
    starts = np.flatnonzero(np.r_[True, size[1:] != size[:-1]])
    k = counts[:, cases].astype(float)
    group = np.add.reduceat(k, starts, axis=1)  # (b, tie group): how many drawn
    avg = np.cumsum(group, axis=1) - group + (group + 1) / 2  # the group's average rank
    positive = diffs[cases] > 0
    v_pos = (np.add.reduceat(k * positive, starts, axis=1) * avg).sum(axis=1)
    v_neg = (np.add.reduceat(k * ~positive, starts, axis=1) * avg).sum(axis=1)
    n = group.sum(axis=1)
    ties = (group**3 - group).sum(axis=1)
    mu = n * (n + 1) / 4
    sigma = np.sqrt(n * (n + 1) * (2 * n + 1) / 24 - ties / 48)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_pos = (v_pos - mu - 0.5) / sigma
        z_neg = (v_neg - mu - 0.5) / sigma
    return np.where(n > 0, ndtr(-z_pos), 1.0), np.where(n > 0, ndtr(-z_neg), 1.0)


def p_adjust(p: np.ndarray, how: str) -> np.ndarray:
    """R's ``p.adjust`` over the last axis (``none``, ``holm``, ``bonferroni``)."""
    m = p.shape[-1]
    if how == "none":
        return p
    if how == "bonferroni":
        return np.minimum(1.0, m * p)
    if how == "holm":
        order = np.argsort(p, axis=-1, kind="stable")
        s = np.take_along_axis(p, order, axis=-1) * (m - np.arange(m))
        adj = np.minimum(1.0, np.maximum.accumulate(s, axis=-1))
        out = np.empty_like(adj)
        np.put_along_axis(out, order, adj, axis=-1)
        return out
    raise InputError(f"--p-adjust must be one of {', '.join(P_ADJUST)}, got {how!r}")


def case_counts(draws: np.ndarray, n_cases: int, challenger: bool = False) -> np.ndarray:
    """counts[b, c]: how often draw b holds case c (with `challenger`, at most once:
    challengeR's bootstrap matches case ids, so a case drawn k times is tested once)."""
    counts = np.zeros((len(draws), n_cases))
    np.add.at(counts, (np.repeat(np.arange(len(draws)), draws.shape[1]), draws.ravel()), 1)
    return np.minimum(counts, 1) if challenger else counts


def pair_pvalues(
    values: np.ndarray, draws: np.ndarray, higher: bool, challenger: bool
) -> np.ndarray:
    """p[b, i, j]: one-sided p-value of "entry i is better than entry j" on the cases of
    draw b both have."""
    n_e = values.shape[0]
    counts = case_counts(draws, values.shape[1], challenger)
    sign = 1.0 if higher else -1.0
    p = np.full((len(draws), n_e, n_e), np.nan)
    for i in range(n_e):
        for j in range(i + 1, n_e):
            p[:, i, j], p[:, j, i] = signed_rank(sign * (values[i] - values[j]), counts)
    return p


def significant_wins(p: np.ndarray, alpha: float, how: str) -> tuple[np.ndarray, np.ndarray]:
    """(wins[b, entry], significant[b, i, j]): the n(n-1) p-values of each draw adjusted
    together, significant where adjusted p <= alpha."""
    adj = adjusted(p, how)
    sig = np.where(np.isnan(adj), False, adj <= alpha)
    return sig.sum(axis=-1).astype(float), sig


def adjusted(p: np.ndarray, how: str) -> np.ndarray:
    """p[b, i, j] adjusted over the n(n-1) ordered pairs of each draw (diagonal NaN)."""
    off = ~np.eye(p.shape[-1], dtype=bool)
    adj = np.full(p.shape, np.nan)
    adj[:, off] = p_adjust(p[:, off], how)
    return adj


def filled(values: np.ndarray, higher: bool, opts: Options) -> np.ndarray:
    """With ``--missing worst``, NaN replaced by the task's worst observed value."""
    if opts.missing != "worst" or not np.isnan(values).any():
        return values
    fill = np.nanmin(values) if higher else np.nanmax(values)
    return np.where(np.isnan(values), fill, values)


def method_scores(
    values: np.ndarray,
    draws: np.ndarray,
    higher: bool,
    method: str,
    opts: Options,
    challenger: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores[b, entry], ranks[b, entry]) of one method on each draw of one task."""
    worst = opts.missing == "worst"
    if method == RANK_THEN_AGGREGATE:
        scores = mean_ranks(case_ranks(values, higher, worst), draws, challenger)
        return scores, ranks_of(scores, higher=False)
    values = filled(values, higher, opts)
    if method == TEST_THEN_RANK:
        wins, _ = significant_wins(
            pair_pvalues(values, draws, higher, challenger), opts.alpha, opts.p_adjust
        )
        return wins, ranks_of(wins, higher=True)
    aggregator(method)  # checks the name
    scores = aggregate_scores(values, draws, method)
    return scores, ranks_of(scores, higher)


# -- whole frames ------------------------------------------------------------------------------
def prepare(frame: pd.DataFrame, higher: Mapping[str, bool], opts: Options) -> pd.DataFrame:
    """Checked frame with the missing-value policy applied."""
    for method in opts.methods:
        if method not in (RANK_THEN_AGGREGATE, TEST_THEN_RANK):
            aggregator(method)
    p_adjust(np.zeros(1), opts.p_adjust)
    if not 0.0 < opts.alpha < 1.0:
        raise InputError(f"--alpha must be between 0 and 1, got {opts.alpha}")
    return apply_missing(check_frame(frame, higher), higher, opts.missing)


def tasks(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["task"]))


def rankings(frame: pd.DataFrame, higher: Mapping[str, bool], opts: Options) -> pd.DataFrame:
    """``task, method, entry, value, rank`` for every task and method on the full data
    (`frame` as `prepare` returns it)."""
    rows = []
    for task in tasks(frame):
        entries, cases, values = matrix(frame[frame["task"] == task])
        full = np.arange(len(cases))[None, :]
        for method in opts.methods:
            scores, ranks = method_scores(values, full, higher[task], method, opts)
            for e, s, r in zip(entries, scores[0], ranks[0], strict=True):
                rows.append((task, method, e, s, r))
    out = pd.DataFrame(rows, columns=["task", "method", "entry", "value", "rank"])
    out["rank"] = out["rank"].astype("Int64")
    return out


def significance(frame: pd.DataFrame, higher: Mapping[str, bool], opts: Options) -> pd.DataFrame:
    """``task, entry, other, p_value, p_adjusted, significant``: entry better than other."""
    rows = []
    for task in tasks(frame):
        entries, cases, values = matrix(frame[frame["task"] == task])
        values = filled(values, higher[task], opts)
        p = pair_pvalues(values, np.arange(len(cases))[None, :], higher[task], False)
        adj = adjusted(p, opts.p_adjust)[0]
        p = p[0]
        for i, e in enumerate(entries):
            for j, o in enumerate(entries):
                if i != j:
                    rows.append((task, e, o, p[i, j], adj[i, j], bool(adj[i, j] <= opts.alpha)))
    cols = ["task", "entry", "other", "p_value", "p_adjusted", "significant"]
    return pd.DataFrame(rows, columns=cols)


# -- uncertainty -------------------------------------------------------------------------------
def kendall_tau_b(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall's tau-b (R's ``cor(method="kendall")``) between ranking `a[entry]` and each
    row of `b[draw, entry]`, on the entries both rank; NaN when either has only ties."""
    ok = ~np.isnan(b) & ~np.isnan(a)[None, :]
    sa = np.sign(a[:, None] - a[None, :])[None]
    sb = np.sign(b[:, :, None] - b[:, None, :])
    both = ok[:, :, None] & ok[:, None, :]
    sa, sb = np.where(both, sa, 0.0), np.where(both, sb, 0.0)
    conc = (sa * sb).sum(axis=(1, 2))
    n1, n2 = (sa != 0).sum(axis=(1, 2)), (sb != 0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n1 > 0) & (n2 > 0), conc / np.sqrt(n1 * n2.astype(float)), np.nan)


def draw_cases(n_cases: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """draws[b, k]: n_cases case indices drawn with replacement, n_boot times."""
    return rng.integers(0, n_cases, size=(n_boot, n_cases))


def _quantiles(x: np.ndarray) -> tuple[float, float, float]:
    x = x[~np.isnan(x)]
    return quantile7(x, 0.5), quantile7(x, 0.025), quantile7(x, 0.975)


def bootstrap_task(
    values: np.ndarray,
    higher: bool,
    opts: Options,
    n_boot: int,
    seed: np.random.SeedSequence,
    challenger: bool = False,
) -> dict[str, np.ndarray]:
    """Bootstrap ranks of one task: method -> ranks[draw, entry] (drawn in chunks)."""
    rng = np.random.default_rng(seed)
    draws = draw_cases(values.shape[1], n_boot, rng)
    out: dict[str, list[np.ndarray]] = {m: [] for m in opts.methods}
    for start in range(0, n_boot, 200):
        chunk = draws[start : start + 200]
        for method in opts.methods:
            out[method].append(method_scores(values, chunk, higher, method, opts, challenger)[1])
    return {m: np.concatenate(r) if r else np.empty((0, values.shape[0])) for m, r in out.items()}


def _bootstrap_job(args: tuple) -> dict[str, np.ndarray]:
    return bootstrap_task(*args)


def bootstrap(
    frame: pd.DataFrame,
    higher: Mapping[str, bool],
    opts: Options,
    n_boot: int = 1000,
    seed: int = 0,
    jobs: int = 1,
    challenger: bool = False,
) -> tuple[pd.DataFrame, dict[tuple[str, str], pd.DataFrame]]:
    """Bootstrap over cases, each task with its own stream of `seed` (the same numbers for
    any `jobs`). Returns the ``bootstrap.csv`` frame (``task, method, entry, rank_median,
    rank_q025, rank_q975, tau_mean, tau_median, tau_q025, tau_q975``) and the ranks of
    every draw by (task, method) (columns: entries). Tasks with one case are left out
    (as challengeR does)."""
    if n_boot < 1:
        raise InputError(f"--bootstrap must be at least 1, got {n_boot}")
    names = [t for t in tasks(frame) if frame.loc[frame["task"] == t, "case"].nunique() > 1]
    if not names:
        raise InputError("every task has only one case: a bootstrap over one case says nothing")
    seeds = np.random.SeedSequence(seed).spawn(len(names))
    mats = [matrix(frame[frame["task"] == t]) for t in names]
    args = [
        (m[2], higher[t], opts, n_boot, s, challenger)
        for t, m, s in zip(names, mats, seeds, strict=True)
    ]
    if jobs > 1 and len(args) > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(args))) as pool:
            results = list(pool.map(_bootstrap_job, args))
    else:
        results = [_bootstrap_job(a) for a in args]
    full = rankings(frame, higher, opts)
    return _bootstrap_frames(names, mats, results, full, challenger)


def _bootstrap_frames(names, mats, results, full, challenger):
    rows, draws = [], {}
    for task, (entries, _, _), result in zip(names, mats, results, strict=True):
        for method, ranks in result.items():
            keep = np.ones(len(entries), dtype=bool)
            if challenger:  # challengeR: an entry missing from one draw is dropped from all
                keep = ~np.isnan(ranks).any(axis=0)
            ref = full[(full["task"] == task) & (full["method"] == method)]
            a = ref.set_index("entry").loc[entries, "rank"].to_numpy(dtype=float)
            tau = kendall_tau_b(a[keep], ranks[:, keep])
            t_summary = (_mean(tau), *_quantiles(tau))
            for i in np.flatnonzero(keep):
                rows.append((task, method, entries[i], *_quantiles(ranks[:, i]), *t_summary))
            draws[(task, method)] = pd.DataFrame(ranks[:, keep], columns=np.array(entries)[keep])
    cols = ["task", "method", "entry", "rank_median", "rank_q025", "rank_q975"]
    cols += ["tau_mean", "tau_median", "tau_q025", "tau_q975"]
    return pd.DataFrame(rows, columns=cols), draws


def _mean(x: np.ndarray) -> float:
    return exact_mean(x[~np.isnan(x)])


# -- across tasks and methods --------------------------------------------------------------------
def consensus(ranked: pd.DataFrame) -> pd.DataFrame:
    """``method, entry, score, rank``: per method the mean over tasks of the within-task
    ranks with ties averaged (challengeR's ``consensus(method="euclidean")``), ranked with
    ties ``min`` (lower score is better)."""
    rows = []
    for method, by_method in ranked.groupby("method", sort=False):
        avg = []
        for _, part in by_method.groupby("task", sort=False):
            r = part["rank"].to_numpy(dtype=float)
            avg.append(pd.Series(rankdata(r, method="average"), index=part["entry"].to_numpy()))
        wide = pd.concat(avg, axis=1)
        score = np.array([exact_mean(row[~np.isnan(row)]) for row in wide.to_numpy()])
        for e, s, r in zip(wide.index, score, ranks_of(score, higher=False), strict=True):
            rows.append((method, e, s, int(r)))
    return pd.DataFrame(rows, columns=["method", "entry", "score", "rank"])


def robustness(ranked: pd.DataFrame) -> pd.DataFrame:
    """``task, method, other, tau``: Kendall's tau-b between the rankings of two methods of
    the same task (how ranks move from one method to another)."""
    rows = []
    for task, part in ranked.groupby("task", sort=False):
        wide = part.pivot(index="entry", columns="method", values="rank").astype(float)
        methods = list(dict.fromkeys(part["method"]))
        for i, m in enumerate(methods):
            for o in methods[i + 1 :]:
                tau = kendall_tau_b(wide[m].to_numpy(), wide[o].to_numpy()[None, :])[0]
                rows.append((task, m, o, tau))
    return pd.DataFrame(rows, columns=["task", "method", "other", "tau"])


def stability_across_tasks(ranked: pd.DataFrame) -> pd.DataFrame:
    """``method, entry, rank_min, rank_median, rank_max``: an entry's ranks over tasks."""
    g = ranked.assign(rank=ranked["rank"].astype(float)).groupby(["method", "entry"], sort=False)
    out = g["rank"].agg(["min", "median", "max"]).reset_index()
    return out.rename(columns={"min": "rank_min", "median": "rank_median", "max": "rank_max"})
