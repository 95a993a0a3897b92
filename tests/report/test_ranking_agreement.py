"""Agreement with challengeR 1.0.5 itself, live (marker ``challenger``: R runs the
bootstraps, minutes; not in the default run nor in ``-m slow``). CI cannot run it: it has
no R and cannot reach challengeR's source (not on CRAN, Debian or PyPI). The default run
checks the same things against challengeR's recorded outputs (test_ranking_golden.py).

Run it where R and the source are: ``tools/challenger-agreement.sh PATH_TO_CHALLENGER``
(or ``E2NET_CHALLENGER_SRC=PATH pytest -m challenger tests/report/test_ranking_agreement.py``).
Needs ``Rscript`` with challengeR's imports (Debian: r-base-core r-cran-dplyr r-cran-plyr
r-cran-reshape2 r-cran-tidyr r-cran-purrr r-cran-ggplot2 r-cran-rlang r-cran-knitr
r-cran-rmarkdown r-cran-viridislite r-bioc-graph). It FAILS, never skips, when they are
missing: a skipped agreement test would be one that cannot fail.

For each recorded case (challenger_checks.CASES) it runs challengeR on the recorded input
and checks (1) its rankings and significance files equal the golden ones byte for byte and
its bootstrap summaries equal the golden ones (same seed, same draws), so the golden files
are still what challengeR says; (2) our engine agrees with this fresh output, with the
tolerances of challenger_checks.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import challenger_checks as C


def _tool():
    spec = importlib.util.spec_from_file_location(
        "challenger_golden", C.TOOLS / "challenger_golden.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


G = _tool()

pytestmark = pytest.mark.challenger


def challenger_src() -> Path:
    src = os.environ.get("E2NET_CHALLENGER_SRC")
    assert shutil.which("Rscript"), "Rscript not found: install R (docs/reports.md)"
    assert src and (Path(src) / "R" / "Bootstrap.R").is_file(), (
        "set E2NET_CHALLENGER_SRC to a checkout of github.com/wiesenfa/challengeR"
    )
    return Path(src)


@pytest.mark.parametrize("case", sorted(C.CASES))
def test_agreement_with_live_challenger(tmp_path, case):
    src = challenger_src()
    data, na_treat, missing, n_boot = C.CASES[case]
    raw, fresh = tmp_path / "raw", tmp_path / "fresh"
    G.run_challenger(src, C.GOLDEN / data, raw, na_treat, n_boot)
    G.write_case(src, case, raw, fresh)
    gold = C.GOLDEN / case
    for name in ("rankings.csv", "significance.csv"):
        assert (fresh / name).read_bytes() == (gold / name).read_bytes(), (case, name)
    for name in ("bootstrap.csv", "tau.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(fresh / name), pd.read_csv(gold / name), rtol=1e-12, obj=name
        )
    frame = C.load_input(data)
    C.check_exact(frame, raw, missing)
    boots, taus = C.summarise_challenger(raw)
    assert C.check_bootstrap(frame, boots, taus, missing) == 3 * 4 * 5
    if case == "readme":
        assert not C.negative_control(frame, taus, n_boot)
