"""The ranking engine (`e2net_eval.report.ranking`): each definition checked against an
independent computation (scipy, a brute-force construction, numbers worked by hand)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sstats

from e2net_eval.errors import InputError
from e2net_eval.report import ranking as R


def _frame(task: str, table: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        (task, e, f"c{i}", v) for e, values in table.items() for i, v in enumerate(values, start=1)
    ]
    return pd.DataFrame(rows, columns=R.COLUMNS)


def _ranks(frame, higher, opts=None, method=None):
    opts = opts or R.Options()
    out = R.rankings(R.prepare(frame, higher, opts), higher, opts)
    if method is not None:
        out = out[out["method"] == method]
    return dict(zip(out["entry"], out["rank"].astype(int), strict=True)), out


# -- Wilcoxon ------------------------------------------------------------------------------------
def _scipy(sample, alt):
    return sstats.wilcoxon(
        sample, zero_method="wilcox", correction=True, alternative=alt, method="approx"
    ).pvalue


@pytest.mark.parametrize("seed", range(6))
def test_signed_rank_matches_scipy_normal_approximation_with_ties_and_zeros(seed):
    rng = np.random.default_rng(seed)
    d = rng.integers(-4, 5, size=(20, 30)).astype(float) / 4  # many ties and zeros
    for row in d:
        if not np.any(row != 0):
            continue
        greater, less = R.signed_rank(row, np.ones((1, len(row))))
        assert greater[0] == pytest.approx(_scipy(row, "greater"), rel=1e-12, abs=1e-15)
        assert less[0] == pytest.approx(_scipy(row, "less"), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("seed", range(4))
def test_signed_rank_of_a_bootstrap_sample_is_the_test_of_the_expanded_sample(seed):
    rng = np.random.default_rng(seed)
    d = np.round(rng.normal(size=25), 1)  # ties, some zeros
    draws = rng.integers(0, 25, size=(5, 25))
    counts = R.case_counts(draws, 25)
    greater, less = R.signed_rank(d, counts)
    for b, draw in enumerate(draws):
        assert greater[b] == pytest.approx(_scipy(d[draw], "greater"), rel=1e-12, abs=1e-15)
        assert less[b] == pytest.approx(_scipy(d[draw], "less"), rel=1e-12, abs=1e-15)
    once = R.signed_rank(d, R.case_counts(draws, 25, challenger=True))[0]
    assert once[0] == pytest.approx(_scipy(d[np.unique(draws[0])], "greater"), rel=1e-12)


def test_signed_rank_by_hand_and_all_zero():
    # challengeR's test: A1 0.2 vs A2 1.0 on 4 cases, smaller better: V=0, mu=5,
    # sigma=sqrt(7.5 - 60/48)=2.5, z=(0-5+0.5)/2.5=-1.8 ("less"), (0-5-0.5)/2.5 ("greater")
    one = np.ones((1, 4))
    greater, less = R.signed_rank(np.array([-0.8, -0.8, -0.8, -0.8]), one)
    assert less[0] == pytest.approx(0.5 * math.erfc(1.8 / math.sqrt(2)), rel=1e-14)
    assert greater[0] == pytest.approx(0.5 * math.erfc(-2.2 / math.sqrt(2)), rel=1e-14)
    assert R.signed_rank(np.zeros(4), one) == (1.0, 1.0)  # R: z = -Inf / +Inf, p = 1
    nan_is_dropped = R.signed_rank(np.array([0.3, np.nan, -0.1, 0.2]), one)
    assert nan_is_dropped[0] == R.signed_rank(np.array([0.3, -0.1, 0.2]), np.ones((1, 3)))[0]


def test_p_adjust_as_r():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    assert R.p_adjust(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert R.p_adjust(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.02])
    assert R.p_adjust(p, "none") is p
    with pytest.raises(InputError):
        R.p_adjust(p, "fdr")


# -- the methods --------------------------------------------------------------------------------
def test_mean_ties_are_exact_where_numpy_is_not():
    a, b = [0.1, 0.2, 0.3], [0.3, 0.2, 0.1]
    assert np.mean(a) != np.mean(b)  # numpy's sum depends on the order
    ranks, out = _ranks(_frame("t", {"A": a, "B": b, "C": [0, 0, 0]}), {"t": True}, method="mean")
    assert ranks == {"A": 1, "B": 1, "C": 3}


def test_quantile_is_r_type_7():
    assert R.quantile7(np.array([4.0, 1.0, 3.0, 2.0]), 0.25) == 1.75
    assert R.quantile7(np.array([1.0, 2.0]), 0.5) == 1.5
    ranks, out = _ranks(
        _frame("t", {"A": [1, 2, 3, 4], "B": [0, 0, 9, 9]}),
        {"t": True},
        R.Options(methods=("quantile_0.25", "median")),
    )
    got = {(m, e): v for m, e, v in zip(out["method"], out["entry"], out["value"], strict=True)}
    assert got[("quantile_0.25", "A")] == 1.75 and got[("quantile_0.25", "B")] == 0.0
    assert got[("median", "B")] == 4.5


def test_rank_then_aggregate_ranks_within_cases_then_the_mean_rank():
    # case ranks (higher better): c1 A1 B2 C3; c2 B1 C2 A3; c3 A1 B1 C3 (tie: min)
    f = _frame("t", {"A": [9, 1, 5], "B": [8, 9, 5], "C": [7, 5, 1]})
    ranks, out = _ranks(f, {"t": True}, method="rank_then_aggregate")
    values = dict(zip(out["entry"], out["value"], strict=True))
    assert values == {
        "A": pytest.approx(5 / 3),
        "B": pytest.approx(4 / 3),
        "C": pytest.approx(8 / 3),
    }
    assert ranks == {"B": 1, "A": 2, "C": 3}


def test_test_then_rank_counts_significant_wins_and_adjusts_all_ordered_pairs():
    rng = np.random.default_rng(3)
    base = rng.normal(size=12)
    f = _frame("t", {"A": base + 2, "B": base + 1, "C": base + rng.normal(0, 0.01, 12)})
    ranks, out = _ranks(f, {"t": True}, method="test_then_rank")
    assert dict(zip(out["entry"], out["value"], strict=True)) == {"A": 2, "B": 1, "C": 0}
    assert ranks == {"A": 1, "B": 2, "C": 3}
    sig = R.significance(R.prepare(f, {"t": True}, R.Options()), {"t": True}, R.Options())
    assert len(sig) == 6
    p = sstats.wilcoxon(
        f[f.entry == "A"].value.to_numpy() - f[f.entry == "C"].value.to_numpy(),
        correction=True,
        alternative="greater",
        method="approx",
    ).pvalue
    row = sig[(sig.entry == "A") & (sig.other == "C")].iloc[0]
    assert row.p_value == pytest.approx(p, rel=1e-12)
    holm = R.significance(
        R.prepare(f, {"t": True}, R.Options()), {"t": True}, R.Options(p_adjust="holm")
    )
    expected = R.p_adjust(sig["p_value"].to_numpy(), "holm")
    assert holm["p_adjusted"].to_numpy() == pytest.approx(expected)


def test_lower_is_better_flips_every_method():
    f = _frame("t", {"A": [1, 2, 3, 1, 2, 3, 1, 2], "B": [5, 6, 7, 5, 6, 7, 5, 6]})
    _, out = _ranks(f, {"t": False})
    first = out[out["rank"] == 1]
    assert set(first["entry"]) == {"A"} and len(first) == len(R.METHODS)


# -- missing values -----------------------------------------------------------------------------
def test_missing_policies():
    f = _frame("t", {"A": [0.9, np.nan, 0.9], "B": [0.8, 0.8, 0.8], "C": [0.1, 0.7, 0.95]})
    hi = {"t": True}
    drop, _ = _ranks(f, hi, R.Options(missing="drop"), "mean")
    assert drop == {"A": 1, "B": 2, "C": 3}  # A: mean of 0.9, 0.9
    worst, out = _ranks(f, hi, R.Options(missing="worst"), "mean")
    a = out.set_index("entry")["value"]["A"]
    assert a == pytest.approx((0.9 + 0.1 + 0.9) / 3)  # the task's worst value, 0.1
    # rank-then-aggregate: the missing case ranks after every observed value (rankNA2)
    _, out = _ranks(f, hi, R.Options(missing="worst"), "rank_then_aggregate")
    assert out.set_index("entry")["value"]["A"] == pytest.approx((1 + 3 + 2) / 3)
    zero, out = _ranks(f, hi, R.Options(missing="0"), "mean")
    assert out.set_index("entry")["value"]["A"] == pytest.approx(0.6)
    with pytest.raises(InputError, match="--missing"):
        R.prepare(f, hi, R.Options(missing="best"))


def test_bad_frames_are_input_errors():
    hi = {"t": True}
    with pytest.raises(InputError, match="at least two entries"):
        R.prepare(_frame("t", {"A": [1, 2]}), hi, R.Options())
    with pytest.raises(InputError, match="every value is undefined"):
        R.prepare(_frame("t", {"A": [np.nan], "B": [np.nan]}), hi, R.Options())
    with pytest.raises(InputError, match="unknown ranking method"):
        R.prepare(_frame("t", {"A": [1], "B": [2]}), hi, R.Options(methods=("mode",)))
    with pytest.raises(InputError, match="no direction"):
        R.prepare(_frame("u", {"A": [1], "B": [2]}), hi, R.Options())


# -- bootstrap ----------------------------------------------------------------------------------
def test_kendall_tau_b_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(1, 4, 7).astype(float)
        b = rng.integers(1, 4, (1, 7)).astype(float)
        want = sstats.kendalltau(a, b[0]).statistic
        got = R.kendall_tau_b(a, b)[0]
        assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want)


def _copies_frame(values: np.ndarray, draw: np.ndarray) -> pd.DataFrame:
    """challengeR's bootstrap sample: a case drawn k times is k rows with ONE case id."""
    rows = [("t", f"E{e}", f"c{c}", values[e, c]) for c in draw for e in range(values.shape[0])]
    return pd.DataFrame(rows, columns=R.COLUMNS)


def test_challenger_compatible_rank_then_aggregate_ranks_copies_together():
    rng = np.random.default_rng(5)
    values = rng.integers(0, 4, (4, 6)).astype(float)
    draw = np.array([0, 0, 0, 2, 5, 5])
    got = R.mean_ranks(R.case_ranks(values, True), draw[None, :], challenger=True)[0]
    # brute force: rank all rows of one case id together, mean over an entry's rows
    f = _copies_frame(values, draw)
    f["r"] = f.groupby("case")["value"].rank(method="min", ascending=False)
    want = f.groupby("entry")["r"].mean().sort_index().to_numpy()
    assert got == pytest.approx(want)
    correct = R.mean_ranks(R.case_ranks(values, True), draw[None, :], challenger=False)[0]
    assert not np.allclose(correct, want)  # the default counts each copy as its own case


def test_challenger_compatible_tests_collapse_copies():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(3, 8))
    draw = np.array([[0, 0, 1, 2, 3, 3, 3, 7]])
    compat = R.pair_pvalues(values, draw, True, challenger=True)[0]
    once = R.pair_pvalues(values[:, [0, 1, 2, 3, 7]], np.arange(5)[None, :], True, False)[0]
    np.testing.assert_array_equal(compat, once)
    copies = R.pair_pvalues(values, draw, True, challenger=False)[0]
    assert not np.allclose(np.nan_to_num(copies), np.nan_to_num(once))


def _boot_frame():
    rng = np.random.default_rng(2)
    parts = []
    for task, shift in (("a/dice", 0.0), ("b/dice", 0.2)):
        base = rng.normal(size=15)
        parts.append(
            _frame(
                task, {f"E{k}": base + 0.3 * k - shift * k + rng.normal(0, 1, 15) for k in range(4)}
            )
        )
    return pd.concat(parts, ignore_index=True), {"a/dice": True, "b/dice": True}


def test_bootstrap_is_seeded_and_the_same_for_any_jobs():
    f, hi = _boot_frame()
    opts = R.Options()
    one, draws1 = R.bootstrap(R.prepare(f, hi, opts), hi, opts, 60, seed=7, jobs=1)
    two, draws2 = R.bootstrap(R.prepare(f, hi, opts), hi, opts, 60, seed=7, jobs=2)
    pd.testing.assert_frame_equal(one, two)
    other, _ = R.bootstrap(R.prepare(f, hi, opts), hi, opts, 60, seed=8)
    assert not all(
        (draws1[k].to_numpy() == d.to_numpy()).all()
        for k, d in R.bootstrap(R.prepare(f, hi, opts), hi, opts, 60, seed=8)[1].items()
    )
    assert set(one.columns) >= {"rank_median", "rank_q025", "rank_q975", "tau_median"}
    assert len(one) == 2 * len(R.METHODS) * 4
    row = one[(one.task == "a/dice") & (one.method == "mean") & (one.entry == "E0")].iloc[0]
    ranks = draws1[("a/dice", "mean")]["E0"].to_numpy()
    assert row.rank_q975 == R.quantile7(ranks, 0.975) and row.rank_median == np.median(ranks)


def test_bootstrap_draws_are_resampled_cases():
    # one draw of the full data ranks as the full data; draws re-rank the drawn cases
    f, hi = _boot_frame()
    opts = R.Options()
    prepared = R.prepare(f, hi, opts)
    entries, cases, values = R.matrix(prepared[prepared.task == "a/dice"])
    draw = np.array([[3, 3, 1, 0, 14, 2, 2, 9, 9, 9, 5, 6, 7, 8, 8]])
    scores, _ = R.method_scores(values, draw, True, "mean", opts)
    assert scores[0] == pytest.approx([math.fsum(values[e, draw[0]]) / 15 for e in range(4)])


# -- across tasks and methods -------------------------------------------------------------------
def test_consensus_averages_ties_within_a_task():
    ranked = pd.DataFrame(
        [
            ("t1", "mean", "A", 0, 1),
            ("t1", "mean", "B", 0, 1),
            ("t1", "mean", "C", 0, 3),
            ("t2", "mean", "C", 0, 1),
            ("t2", "mean", "A", 0, 2),
            ("t2", "mean", "B", 0, 3),
        ],
        columns=["task", "method", "entry", "value", "rank"],
    )
    cons = R.consensus(ranked).set_index("entry")
    # averaged: A (1.5+2)/2, B (1.5+3)/2, C (3+1)/2; with min ties B and C would tie
    assert cons["score"].to_dict() == {"A": 1.75, "B": 2.25, "C": 2.0}
    assert cons["rank"].to_dict() == {"A": 1, "C": 2, "B": 3}


def test_robustness_is_tau_between_methods():
    f, hi = _boot_frame()
    opts = R.Options()
    ranked = R.rankings(R.prepare(f, hi, opts), hi, opts)
    rob = R.robustness(ranked)
    assert len(rob) == 2 * 6
    part = ranked[ranked.task == "a/dice"].pivot(index="entry", columns="method", values="rank")
    row = rob[(rob.task == "a/dice") & (rob.method == "mean") & (rob.other == "median")].iloc[0]
    want = sstats.kendalltau(part["mean"].astype(float), part["median"].astype(float)).statistic
    assert row.tau == pytest.approx(want)


def test_an_entry_missing_from_a_draw():
    # C has one value: draws without that case cannot rank C. challengeR drops C from the
    # whole bootstrap; by default C keeps the draws that rank it.
    nan = np.nan
    f = _frame(
        "t", {"A": [1, 2, 3, 4, 5, 6], "B": [2, 3, 4, 5, 6, 7], "C": [9, nan, nan, nan, nan, nan]}
    )
    hi, opts = {"t": True}, R.Options(methods=("mean",))
    prepared = R.prepare(f, hi, opts)
    default, draws = R.bootstrap(prepared, hi, opts, 40, seed=0)
    compat, _ = R.bootstrap(prepared, hi, opts, 40, seed=0, challenger=True)
    assert set(default["entry"]) == {"A", "B", "C"} and set(compat["entry"]) == {"A", "B"}
    c = draws[("t", "mean")]["C"]
    assert c.isna().any() and (c.dropna() == 1).all()
    assert default.set_index("entry").loc["C", "rank_q975"] == 1
