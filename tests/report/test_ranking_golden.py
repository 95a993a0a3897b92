"""Agreement with challengeR 1.0.5 in the default run, without R: our engine on the
recorded inputs against challengeR's recorded outputs (``challenger_golden/``, see its
README for the command, commit, R version and date that made them).

Cases: challengeR's README data (tasks c_ideal, c_random, c_worstcase; ``na.rm``) and a
variant with ties (values rounded to one decimal) and missing values (challengeR's
``na.treat = 0`` against our ``--missing 0``, and ``na.rm`` against ``--missing drop``).

Exact for the deterministic parts (aggregates to 1e-15 relative, ranks, significance
matrices with p-adjust none and Holm, test-then-rank values and ranks). The bootstrap is
compared in ``--challenger-compatible`` mode within Monte-Carlo error: Z = 4.5 standard
errors of the difference of two independent means for mean ranks, the fraction of draws
with Kendall's tau undefined and the mean tau; each of challengeR's rank quantiles
(2.5/50/97.5 %) within our quantiles at p -/+ 4.5 * sqrt(p (1 - p) (1/B_ours + 1/B_R)).
Why 4.5: about 7e-6 false alarms per comparison, a few hundred comparisons, so about one
false alarm per thousand runs, and our seed is fixed, so a pass is reproducible; a
systematic difference (the negative control below: our default bootstrap, which counts a
case drawn k times k times, against challengeR's, which collapses them) fails it.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.helpers import challenger_checks as C


def golden(case: str) -> tuple[pd.DataFrame, str, int]:
    data, _, missing, n_boot = C.CASES[case]
    info = json.loads((C.GOLDEN / case / "run.json").read_text())
    assert info["bootstrap_draws"] == n_boot and info["seed"] == C.SEED
    return C.load_input(data), missing, n_boot


@pytest.mark.parametrize("case", sorted(C.CASES))
def test_exact_parts_equal_challenger(case):
    frame, missing, _ = golden(case)
    if case != "readme":
        assert frame["value"].isna().sum() > 0
    C.check_exact(frame, C.GOLDEN / case, missing)


@pytest.mark.parametrize("case", sorted(C.CASES))
def test_bootstrap_agrees_with_challenger(case):
    frame, missing, _ = golden(case)
    boots = pd.read_csv(C.GOLDEN / case / "bootstrap.csv")
    taus = pd.read_csv(C.GOLDEN / case / "tau.csv")
    compared = C.check_bootstrap(frame, boots, taus, missing)
    n_tasks, n_methods, n_entries = 3, 4, 5
    assert compared == n_tasks * n_methods * n_entries


def test_bootstrap_check_has_power():
    """Our default bootstrap is not challengeR's; the Monte-Carlo check sees it."""
    frame, _, n_boot = golden("readme")
    taus = pd.read_csv(C.GOLDEN / "readme" / "tau.csv")
    assert not C.negative_control(frame, taus, n_boot)
