"""Agreement with challengeR 1.0.5 itself (slow: R runs the bootstraps, minutes).

Needs ``Rscript`` with challengeR's imports (Debian: r-base-core r-cran-dplyr r-cran-plyr
r-cran-reshape2 r-cran-tidyr r-cran-purrr r-cran-ggplot2 r-cran-rlang r-cran-knitr
r-cran-rmarkdown r-cran-viridislite r-bioc-graph) and a checkout of challengeR in
``E2NET_CHALLENGER_SRC`` (`.ci/run` provides both). It FAILS, never skips, when they are
missing: a skipped agreement test would be one that cannot fail.

On challengeR's README data (``inst/extdata/data_matrix.csv``: tasks c_ideal, c_random,
c_worstcase) and on a variant with ties (values rounded to one decimal) and missing values
(both ``na.treat=0`` and ``"na.rm"``):

- exact: every aggregate (to 1e-15 relative: R's mean and ``math.fsum``/n may differ in
  the last bit), every rank, every significance matrix (p-adjust none and Holm), the
  test-then-rank values (challengeR's prop_significance = wins / (n - 1)) and ranks;
- Monte-Carlo (``--challenger-compatible``; the two programs draw different random
  numbers): per task, method and entry, the mean bootstrap rank and the mean Kendall tau
  agree within 4.5 standard errors of the difference of two independent means
  (sqrt(var_ours/B + var_R/B)), and each rank quantile (2.5, 50, 97.5 %) of challengeR
  lies between our quantiles at levels p -/+ 4.5 * sqrt(2 p (1 - p) / B) (the
  quantile's own sampling error). 4.5 standard errors: about 7e-6 false alarms per
  comparison, for a few hundred comparisons.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from e2net_eval.report import ranking as R

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "challenger_agreement.R"
N_BOOT = 400
Z = 4.5
METHODS = ("mean", "median", "rank_then_aggregate", "test_then_rank")


def challenger_src() -> Path:
    src = os.environ.get("E2NET_CHALLENGER_SRC")
    assert shutil.which("Rscript"), "Rscript not found: install R (see .ci/run)"
    assert src and (Path(src) / "R" / "Bootstrap.R").is_file(), (
        "set E2NET_CHALLENGER_SRC to a checkout of github.com/wiesenfa/challengeR"
    )
    return Path(src)


def readme_data(src: Path) -> pd.DataFrame:
    raw = pd.read_csv(src / "inst" / "extdata" / "data_matrix.csv")
    return raw.rename(columns={"alg_name": "entry"})[R.COLUMNS].astype({"case": str})


def ties_and_missing(src: Path) -> pd.DataFrame:
    frame = readme_data(src)
    frame["value"] = frame["value"].round(1)
    rng = np.random.default_rng(21)
    frame.loc[rng.random(len(frame)) < 0.05, "value"] = np.nan
    return frame


def run_challenger(src: Path, frame: pd.DataFrame, tmp: Path, na_treat: str) -> Path:
    data = tmp / "data.csv"
    frame.to_csv(data, index=False, na_rep="NA")
    out = tmp / "challenger"
    args = [str(src), str(data), str(out), na_treat, str(N_BOOT), "1"]
    done = subprocess.run(["Rscript", str(SCRIPT), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def ours(
    frame: pd.DataFrame, missing: str, p_adjust: str = "none", boot: bool = False, compat=True
):
    higher = {t: True for t in frame["task"].unique()}
    opts = R.Options(missing=missing, p_adjust=p_adjust)
    prepared = R.prepare(frame, higher, opts)
    if boot:
        return R.bootstrap(prepared, higher, opts, N_BOOT, seed=1, challenger=compat)[1]
    return R.rankings(prepared, higher, opts), R.significance(prepared, higher, opts)


def check_exact(frame, out: Path, missing: str) -> None:
    theirs = pd.read_csv(out / "rankings.csv", dtype={"value": str})
    theirs["value"] = theirs["value"].astype(float)
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
        rs = pd.read_csv(out / "significance.csv")
        rs = rs[(rs.p_adjust == adjust) & (rs.entry != rs.other)]
        merged = sig.merge(rs, on=["task", "entry", "other"], suffixes=("", "_r"))
        assert len(merged) == len(sig) == len(rs)
        assert (merged["significant"].astype(int) == merged["significant_r"]).all()


def _within_quantiles(ours_v: np.ndarray, theirs_q: float, p: float) -> bool:
    d = Z * math.sqrt(2 * p * (1 - p) / len(ours_v))
    lo = np.quantile(ours_v, max(p - d, 0.0), method="inverted_cdf")
    hi = np.quantile(ours_v, min(p + d, 1.0), method="inverted_cdf")
    return lo - 1e-9 <= theirs_q <= hi + 1e-9


def _same_mean(a: np.ndarray, b: np.ndarray) -> bool:
    """Two Monte-Carlo means agree within Z standard errors of their difference (both
    empty: tau undefined in every draw, as when every entry ties)."""
    if len(a) < 2 or len(b) < 2:
        return len(a) == len(b) == 0
    a, b = a.astype(float), b.astype(float)
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return abs(a.mean() - b.mean()) <= Z * se + 1e-12


def check_bootstrap(frame, out: Path, missing: str) -> int:
    draws = ours(frame, missing, boot=True)
    boots = pd.read_csv(out / "boot_ranks.csv")
    taus = pd.read_csv(out / "tau.csv")
    compared = 0
    for (task, method), mine in draws.items():
        theirs = boots[(boots.task == task) & (boots.method == method)]
        assert set(theirs.entry) == set(mine.columns), (task, method)
        for entry in mine.columns:
            a = mine[entry].to_numpy(dtype=float)
            b = theirs.loc[theirs.entry == entry, "rank"].to_numpy(dtype=float)
            assert _same_mean(a, b), (task, method, entry)
            for p in (0.025, 0.5, 0.975):
                assert _within_quantiles(a, R.quantile7(b, p), p), (task, method, entry, p)
            compared += 1
        full = ours(frame, missing)[0]
        ref = full[(full.task == task) & (full.method == method)].set_index("entry")["rank"]
        tau_a = R.kendall_tau_b(ref.loc[mine.columns].to_numpy(float), mine.to_numpy(float))
        tau_b = taus[(taus.task == task) & (taus.method == method)]["tau"].to_numpy(float)
        assert _same_mean(np.isnan(tau_a), np.isnan(tau_b)), (task, method, "tau undefined")
        tau_a, tau_b = tau_a[~np.isnan(tau_a)], tau_b[~np.isnan(tau_b)]
        assert _same_mean(tau_a, tau_b), (task, method)
    return compared


def test_agreement_on_challenger_readme_data(tmp_path):
    src = challenger_src()
    frame = readme_data(src)
    out = run_challenger(src, frame, tmp_path, "na.rm")
    check_exact(frame, out, "drop")
    assert check_bootstrap(frame, out, "drop") == 3 * len(METHODS) * 5
    # the check has power: our default bootstrap (a case drawn k times is k cases) is not
    # challengeR's, and the difference shows in test-then-rank's tau on c_random
    draws = ours(frame, "drop", boot=True, compat=False)[("c_random", "test_then_rank")]
    full = ours(frame, "drop")[0]
    ref = full[(full.task == "c_random") & (full.method == "test_then_rank")]
    ref = ref.set_index("entry")["rank"].loc[draws.columns].to_numpy(float)
    taus = pd.read_csv(out / "tau.csv")
    theirs = taus[(taus.task == "c_random") & (taus.method == "test_then_rank")]["tau"]
    mine = R.kendall_tau_b(ref, draws.to_numpy(float))
    assert not _same_mean(mine[~np.isnan(mine)], theirs.dropna().to_numpy(float))


@pytest.mark.parametrize("na_treat, missing", [("0", "0"), ("na.rm", "drop")])
def test_agreement_with_ties_and_missing_values(tmp_path, na_treat, missing):
    src = challenger_src()
    frame = ties_and_missing(src)
    assert frame["value"].isna().sum() > 0
    out = run_challenger(src, frame, tmp_path, na_treat)
    check_exact(frame, out, missing)
    assert check_bootstrap(frame, out, missing) > 0
