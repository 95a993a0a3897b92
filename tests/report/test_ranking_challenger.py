"""challengeR 1.0.5's own testthat expectations (tests/testthat/test-aggregateThenRank.R,
test-rankThenAggregate.R, test-testThenRank.R, test-bootstrap.R), ported as plain cases:
the same data, the same expected values and ranks. Only the numbers are taken (facts),
no code. Mapping: challengeR's ``na.treat=<number>`` is ``--missing <number>``,
``na.treat="na.rm"`` is ``--missing drop``, rank-then-aggregate without na.treat (NA ranks
last in its case) is ``--missing worst``; test-then-rank's ``prop_significance`` (wins /
(n-1)) is our ``value`` (wins) divided by n-1.

Not ported, by design: the error-message cases of R's argument matching (invalid ``FUN``,
``ties.method``, ``na.treat``), ties methods other than ``min`` (not offered), and the
one-algorithm cases (a ranking of one entry is bad input here, exit 2).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from e2net_eval.errors import InputError
from e2net_eval.report import ranking as R

NA = math.nan


def challenge(*tasks: tuple[str, list[tuple[str, float, str]]]) -> pd.DataFrame:
    rows = [(t, algo, case, value) for t, data in tasks for algo, value, case in data]
    return pd.DataFrame(rows, columns=R.COLUMNS)


def ranked(frame, small_better: bool, method: str, missing: str = "drop") -> dict:
    """task -> {algo: (value, rank)} as challengeR's ``ranking$matlist``."""
    higher = {t: not small_better for t in frame["task"].unique()}
    opts = R.Options(missing=missing, methods=(method,))
    out = R.rankings(R.prepare(frame, higher, opts), higher, opts)
    return {
        t: {e: (v, int(r)) for e, v, r in zip(p["entry"], p["value"], p["rank"], strict=True)}
        for t, p in out.groupby("task")
    }


ONE_CASE = [("A1", 0.6, "C1"), ("A2", 0.8, "C1")]
TIE = [("A1", 0.6, "C1"), ("A2", 0.6, "C1")]
TWO_CASES = [("A1", 0.6, "C1"), ("A1", 0.4, "C2"), ("A2", 0.8, "C1"), ("A2", 1.0, "C2")]
NA_ONE_CASE = [("A1", NA, "C1"), ("A2", 0.8, "C1")]
FOUR = [(a, v, f"C{i}") for a, v in (("A1", 0.2), ("A2", 1.0)) for i in range(1, 5)]
FOUR_NA = [("A1", NA, "C1"), *FOUR[1:]]
T2_TIE = [("A1", 0.6, "C1"), ("A1", 0.6, "C2"), ("A2", 0.8, "C1"), ("A2", 0.8, "C2")]


# -- test-aggregateThenRank.R -------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, small, method, missing, expected",
    [
        (ONE_CASE, True, "mean", "drop", {"A1": (0.6, 1), "A2": (0.8, 2)}),
        (ONE_CASE, False, "mean", "drop", {"A1": (0.6, 2), "A2": (0.8, 1)}),
        (TIE, True, "mean", "drop", {"A1": (0.6, 1), "A2": (0.6, 1)}),
        (TWO_CASES, True, "mean", "drop", {"A1": (0.5, 1), "A2": (0.9, 2)}),
        (TWO_CASES, True, "median", "drop", {"A1": (0.5, 1), "A2": (0.9, 2)}),
        (ONE_CASE, False, "mean", "0", {"A1": (0.6, 2), "A2": (0.8, 1)}),
        (NA_ONE_CASE, False, "mean", "0", {"A1": (0.0, 2), "A2": (0.8, 1)}),
        (NA_ONE_CASE, False, "mean", "-1", {"A1": (-1.0, 2), "A2": (0.8, 1)}),
    ],
)
def test_aggregate_then_rank(data, small, method, missing, expected):
    got = ranked(challenge(("T1", data)), small, method, missing)["T1"]
    assert got == {k: (pytest.approx(v), r) for k, (v, r) in expected.items()}


def test_aggregate_then_rank_na_removed():
    # challengeR: "NAs are removed" leaves A2 alone (value 0.8, rank 1); here the second
    # entry makes it a ranking: A1 has no value left, so it is not ranked in this task
    frame = challenge(("T1", NA_ONE_CASE + [("A3", 0.5, "C1")]))
    got = ranked(frame, False, "mean", "drop")["T1"]
    assert got == {"A2": (pytest.approx(0.8), 1), "A3": (pytest.approx(0.5), 2)}


def test_aggregate_then_rank_multi_task():
    t2 = [("A1", 0.5, "C1"), ("A2", 0.4, "C1")]
    got = ranked(challenge(("T1", ONE_CASE), ("T2", t2)), True, "mean")
    assert got == {
        "T1": {"A1": (pytest.approx(0.6), 1), "A2": (pytest.approx(0.8), 2)},
        "T2": {"A1": (pytest.approx(0.5), 2), "A2": (pytest.approx(0.4), 1)},
    }
    t2_na = [("A1", NA, "C1"), ("A2", 0.4, "C1")]
    got = ranked(challenge(("T1", ONE_CASE), ("T2", t2_na)), True, "mean", "100")
    assert got["T2"] == {"A1": (pytest.approx(100.0), 2), "A2": (pytest.approx(0.4), 1)}
    assert got["T1"] == {"A1": (pytest.approx(0.6), 1), "A2": (pytest.approx(0.8), 2)}


# -- test-rankThenAggregate.R -------------------------------------------------------------------
RTA = "rank_then_aggregate"


@pytest.mark.parametrize(
    "data, small, expected",
    [
        (ONE_CASE, True, {"A1": (1, 1), "A2": (2, 2)}),
        (ONE_CASE, False, {"A1": (2, 2), "A2": (1, 1)}),
        (TIE, True, {"A1": (1, 1), "A2": (1, 1)}),
        (TWO_CASES, True, {"A1": (1, 1), "A2": (2, 2)}),
        (NA_ONE_CASE, False, {"A1": (2, 2), "A2": (1, 1)}),  # "assigns worst rank for NA"
    ],
)
def test_rank_then_aggregate(data, small, expected):
    got = ranked(challenge(("T1", data)), small, RTA, "worst")["T1"]
    assert got == {k: (pytest.approx(v), r) for k, (v, r) in expected.items()}


def test_rank_then_aggregate_multi_task_and_worst_rank_for_na():
    t2 = [("A1", 0.5, "C1"), ("A2", 0.4, "C1")]
    got = ranked(challenge(("T1", ONE_CASE), ("T2", t2)), True, RTA)
    assert got == {"T1": {"A1": (1, 1), "A2": (2, 2)}, "T2": {"A1": (2, 2), "A2": (1, 1)}}
    t2_na = [("A1", NA, "C1"), ("A2", 0.4, "C1")]
    got = ranked(challenge(("T1", ONE_CASE), ("T2", t2_na)), True, RTA, "worst")
    assert got == {"T1": {"A1": (1, 1), "A2": (2, 2)}, "T2": {"A1": (2, 2), "A2": (1, 1)}}


# -- test-testThenRank.R ------------------------------------------------------------------------
TTR = "test_then_rank"


@pytest.mark.parametrize(
    "data, small, missing, expected",
    [
        (ONE_CASE, True, "drop", {"A1": (0, 1), "A2": (0, 1)}),  # one case: no significance
        (FOUR, True, "drop", {"A1": (1, 1), "A2": (0, 2)}),
        (FOUR, False, "drop", {"A1": (0, 2), "A2": (1, 1)}),
        (FOUR, True, "0", {"A1": (1, 1), "A2": (0, 2)}),  # na.treat given, no NA
        (FOUR_NA, True, "100", {"A1": (0, 1), "A2": (0, 1)}),
        (FOUR_NA, True, "0", {"A1": (1, 1), "A2": (0, 2)}),  # na.treat = function(x) 0
        (FOUR_NA, True, "drop", {"A1": (0, 1), "A2": (0, 1)}),  # na.rm: 3 cases left
    ],
)
def test_test_then_rank(data, small, missing, expected):
    got = ranked(challenge(("T1", data)), small, TTR, missing)["T1"]
    assert got == {k: (pytest.approx(v), r) for k, (v, r) in expected.items()}


def test_test_then_rank_multi_task():
    got = ranked(challenge(("T1", FOUR), ("T2", T2_TIE)), True, TTR)
    assert got == {"T1": {"A1": (1, 1), "A2": (0, 2)}, "T2": {"A1": (0, 1), "A2": (0, 1)}}
    got = ranked(challenge(("T1", FOUR_NA), ("T2", T2_TIE)), True, TTR, "0")
    assert got == {"T1": {"A1": (1, 1), "A2": (0, 2)}, "T2": {"A1": (0, 1), "A2": (0, 1)}}


# -- test-bootstrap.R ---------------------------------------------------------------------------
def _three_tasks(t2_cases: int) -> pd.DataFrame:
    t2 = [(a, v, f"C{i}") for i in range(1, t2_cases + 1) for a, v in (("A1", 0.2), ("A2", 0.3))]
    return challenge(
        ("T1", [("A1", 0.8, "C1"), ("A2", 0.6, "C1")]),
        ("T2", t2),
        ("T3", [("A1", 0.1, "C1"), ("A2", 0.8, "C1")]),
    )


def test_bootstrap_of_one_case_tasks():
    opts = R.Options(methods=("median",))
    higher = {"T1": True, "T2": True, "T3": True}
    with pytest.raises(InputError, match="only one case"):
        R.bootstrap(R.prepare(_three_tasks(1), higher, opts), higher, opts, 10, seed=1)
    boot, _ = R.bootstrap(R.prepare(_three_tasks(2), higher, opts), higher, opts, 3, seed=1)
    assert set(boot["task"]) == {"T2"}  # tasks with one case left out


def test_two_sequential_bootstraps_are_equal():
    rng = np.random.default_rng(0)
    frame = challenge(("T", [(f"A{a}", rng.random(), f"C{c}") for a in range(3) for c in range(9)]))
    opts = R.Options(methods=(RTA,))
    higher = {"T": True}
    one = R.bootstrap(R.prepare(frame, higher, opts), higher, opts, 10, seed=123)[0]
    two = R.bootstrap(R.prepare(frame, higher, opts), higher, opts, 10, seed=123)[0]
    pd.testing.assert_frame_equal(one, two)
