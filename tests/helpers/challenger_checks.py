"""Comparing our ranking engine with challengeR 1.0.5's outputs: recorded ones (the golden
files in ``challenger_golden/``, checked in the default run by ``test_ranking_golden.py``)
or fresh ones (``test_ranking_agreement.py``, marker ``challenger``, where R and
challengeR's source are available). Shared by both, and by ``tools/challenger_golden.py``,
which summarises a fresh challengeR run into the golden files.

Tolerances:

- exact: every aggregate (to 1e-15 relative: R's mean and ``math.fsum``/n may differ in
  the last bit), every rank, every significance matrix (p-adjust none and Holm), the
  test-then-rank values (challengeR's prop_significance = wins / (n - 1)) and ranks;
- Monte-Carlo (``--challenger-compatible``; the two programs draw different random
  numbers, R's L'Ecuyer-CMRG streams against numpy's): per task, method and entry, the
  mean bootstrap rank, the fraction of draws where Kendall's tau is undefined and the mean
  tau agree within Z = 4.5 standard errors of the difference of two independent means,
  sqrt(var_ours/B_ours + var_R/B_R); each rank quantile (2.5, 50, 97.5 %) of challengeR
  lies between our quantiles at levels p -/+ 4.5 * sqrt(2 p (1 - p) / B) (the quantile's
  own sampling error, for both sides). 4.5 standard errors: about 7e-6 false alarms per
  comparison, a few hundred comparisons per run, so about 1e-3 per run, while a
  systematic difference of a fraction of a rank shows (the negative control: our default
  bootstrap, which is not challengeR's, fails the tau check on c_random test-then-rank).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from e2net_eval.report import ranking as R

GOLDEN = Path(__file__).resolve().parents[1] / "report" / "challenger_golden"
TOOLS = Path(__file__).resolve().parents[2] / "tools"
Z = 4.5
QUANTILES = (0.025, 0.5, 0.975)
# case -> (input CSV, challengeR's na.treat, our --missing, bootstrap draws)
CASES = {
    "readme": ("readme_data.csv", "na.rm", "drop", 400),
    "ties_missing_0": ("ties_missing_data.csv", "0", "0", 200),
    "ties_missing_narm": ("ties_missing_data.csv", "na.rm", "drop", 200),
}
SEED = 1


def load_input(name: str) -> pd.DataFrame:
    """A recorded input (``task, entry, case, value``; NA for missing), values exactly as
    written (shortest round-trip decimal)."""
    path = GOLDEN / name
    return pd.read_csv(path, dtype={"case": str}, float_precision="round_trip")


def ours(frame, missing: str, p_adjust: str = "none", boot: int = 0, compat: bool = True):
    """Our full-data (rankings, significance), or with `boot` draws our bootstrap ranks
    per (task, method) (seed `SEED`)."""
    higher = {t: True for t in frame["task"].unique()}
    opts = R.Options(missing=missing, p_adjust=p_adjust)
    prepared = R.prepare(frame, higher, opts)
    if boot:
        return R.bootstrap(prepared, higher, opts, boot, seed=SEED, challenger=compat)[1]
    return R.rankings(prepared, higher, opts), R.significance(prepared, higher, opts)


def read_rankings(folder: Path) -> pd.DataFrame:
    theirs = pd.read_csv(folder / "rankings.csv", dtype={"value": str})
    theirs["value"] = theirs["value"].astype(float)
    return theirs


def check_exact(frame: pd.DataFrame, folder: Path, missing: str) -> None:
    """Aggregates, ranks, test-then-rank values (none and Holm) and significance matrices
    equal challengeR's (``rankings.csv``, ``significance.csv`` in `folder`)."""
    theirs = read_rankings(folder)
    for adjust, suffix in (("none", ""), ("holm", "_holm")):
        ranked, sig = ours(frame, missing, adjust)
        n = ranked.groupby("task")["entry"].nunique()
        for row in ranked.itertuples():
            if suffix and row.method != "test_then_rank":
                continue
            method = row.method + suffix
            t = theirs[(theirs.task == row.task) & (theirs.method == method)]
            t = t.set_index("entry").loc[row.entry]
            value = row.value / (n[row.task] - 1) if row.method == "test_then_rank" else row.value
            assert value == pytest.approx(t.value, rel=1e-15, abs=1e-300), (row, method)
            assert int(row.rank) == int(t["rank"]), (row, method)
        rs = pd.read_csv(folder / "significance.csv")
        rs = rs[(rs.p_adjust == adjust) & (rs.entry != rs.other)]
        merged = sig.merge(rs, on=["task", "entry", "other"], suffixes=("", "_r"))
        assert len(merged) == len(sig) == len(rs)
        assert (merged["significant"].astype(int) == merged["significant_r"]).all(), adjust


def summarise_challenger(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """challengeR's bootstrap draws (``boot_ranks.csv``, ``tau.csv``) as per-entry rank
    summaries and per-(task, method) tau summaries: what the golden files keep."""
    boots = pd.read_csv(folder / "boot_ranks.csv")
    rows = []
    for (task, method, entry), g in boots.groupby(["task", "method", "entry"], sort=True):
        r = g["rank"].to_numpy(dtype=float)
        q = {f"rank_q{p * 1000:03.0f}": R.quantile7(r, p) for p in QUANTILES}
        rows.append(
            dict(task=task, method=method, entry=entry, n_draws=len(r), rank_mean=r.mean())
            | dict(rank_var=r.var(ddof=1), **q)
        )
    taus = pd.read_csv(folder / "tau.csv")
    trows = []
    for (task, method), g in taus.groupby(["task", "method"], sort=True):
        t = g["tau"].to_numpy(dtype=float)
        ok = t[~np.isnan(t)]
        trows.append(
            dict(task=task, method=method, n_draws=len(t), n_undefined=int(np.isnan(t).sum()))
            | dict(tau_mean=ok.mean() if len(ok) else math.nan)
            | dict(tau_var=ok.var(ddof=1) if len(ok) > 1 else math.nan)
        )
    return pd.DataFrame(rows), pd.DataFrame(trows)


def same_mean(a: np.ndarray, mean: float, var: float, n: int) -> bool:
    """Our draws `a` and challengeR's summary (mean, variance, count) agree within Z
    standard errors of the difference of the means (both empty: undefined everywhere)."""
    if len(a) < 2 or n < 2:
        return len(a) == n == 0
    a = a.astype(float)
    se = math.sqrt(a.var(ddof=1) / len(a) + var / n)
    return abs(a.mean() - mean) <= Z * se + 1e-12


def within_quantiles(ours_v: np.ndarray, theirs_q: float, p: float, n_theirs: int) -> bool:
    """challengeR's `p` quantile lies within our quantiles at p -/+ Z standard errors."""
    d = Z * math.sqrt(p * (1 - p) * (1 / len(ours_v) + 1 / n_theirs))
    lo = np.quantile(ours_v, max(p - d, 0.0), method="inverted_cdf")
    hi = np.quantile(ours_v, min(p + d, 1.0), method="inverted_cdf")
    return lo - 1e-9 <= theirs_q <= hi + 1e-9


def taus_of(frame, missing: str, draws: pd.DataFrame, task: str, method: str) -> np.ndarray:
    """Kendall's tau-b between the full-data ranking and each of our bootstrap rankings."""
    full = ours(frame, missing)[0]
    ref = full[(full.task == task) & (full.method == method)].set_index("entry")["rank"]
    return R.kendall_tau_b(ref.loc[draws.columns].to_numpy(float), draws.to_numpy(float))


def tau_agrees(mine: np.ndarray, t) -> bool:
    """Our taus against challengeR's tau summary row `t`: the fraction undefined and the
    mean of the defined ones."""
    und = np.isnan(mine)
    k, n = int(t.n_undefined), int(t.n_draws)
    und_var = n / (n - 1) * (k / n) * (1 - k / n)
    if not same_mean(und.astype(float), k / n, und_var, n):
        return False
    return same_mean(mine[~und], float(t.tau_mean), float(t.tau_var), n - k)


def check_bootstrap(frame, boots: pd.DataFrame, taus: pd.DataFrame, missing: str) -> int:
    """Our challenger-compatible bootstrap against challengeR's summaries; the number of
    (task, method, entry) compared."""
    n_boot = int(boots["n_draws"].max())
    draws = ours(frame, missing, boot=n_boot)
    compared = 0
    for (task, method), mine in draws.items():
        theirs = boots[(boots.task == task) & (boots.method == method)].set_index("entry")
        assert set(theirs.index) == set(mine.columns), (task, method)
        for entry in mine.columns:
            a, t = mine[entry].to_numpy(dtype=float), theirs.loc[entry]
            assert same_mean(a, t.rank_mean, t.rank_var, int(t.n_draws)), (task, method, entry)
            for p in QUANTILES:
                q = t[f"rank_q{p * 1000:03.0f}"]
                assert within_quantiles(a, q, p, int(t.n_draws)), (task, method, entry, p)
            compared += 1
        row = taus[(taus.task == task) & (taus.method == method)].iloc[0]
        assert tau_agrees(taus_of(frame, missing, mine, task, method), row), (task, method)
    return compared


def negative_control(frame, taus: pd.DataFrame, n_boot: int) -> bool:
    """Whether our DEFAULT bootstrap (a case drawn k times is k cases; not challengeR's)
    agrees with challengeR on test-then-rank's tau for c_random (it must not)."""
    draws = ours(frame, "drop", boot=n_boot, compat=False)[("c_random", "test_then_rank")]
    mine = taus_of(frame, "drop", draws, "c_random", "test_then_rank")
    row = taus[(taus.task == "c_random") & (taus.method == "test_then_rank")].iloc[0]
    return tau_agrees(mine, row)


def write_run_json(folder: Path, info: dict) -> None:
    (folder / "run.json").write_text(json.dumps(info, indent=1) + "\n")
