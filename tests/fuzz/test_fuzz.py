"""The fuzzer in the suite: seeded mutants of every input kind through evaluate, datasets
check/convert, regress and compare, each outcome judged by one oracle (`fuzz_core`).

``E2NET_FUZZ_SEED`` and ``E2NET_FUZZ_N`` override the seed and the number of inputs;
``E2NET_FUZZ_ONLY=3,17`` reruns just those inputs. The seed, the figures and every
failure (with its input number) are printed and put in the assertion message.
"""

from __future__ import annotations

import os
import time

import pytest
from fuzz_core import DEFAULT_SEED, KNOWN_PENDING, Campaign
from fuzz_run import run_campaign

#: inputs of the default run (the issue asks for at least 200) and of the slow run (5,000)
DEFAULT_N, SLOW_N = 240, 5000


def _settings(n: int) -> tuple[int, int, list[int] | None]:
    seed = int(os.environ.get("E2NET_FUZZ_SEED", DEFAULT_SEED))
    n = int(os.environ.get("E2NET_FUZZ_N", n))
    only = os.environ.get("E2NET_FUZZ_ONLY")
    return seed, n, [int(x) for x in only.split(",")] if only else None


def _report(camp: Campaign, seconds: float) -> str:
    pending = camp.failures(pending=True)
    lines = [
        f"fuzz seed {camp.seed} (E2NET_FUZZ_SEED), {camp.n} inputs (E2NET_FUZZ_N), {seconds:.0f} s",
        camp.figures(),
        f"{len(pending)} failure(s) explained by KNOWN_PENDING items "
        f"{sorted({r.pending for r in pending})} (fixed on other branches)",
    ]
    return "\n".join(lines)


def _fuzz(tmp_path, n: int) -> None:
    seed, n, only = _settings(n)
    start = time.monotonic()
    camp = run_campaign(tmp_path, seed, n, only)
    report = _report(camp, time.monotonic() - start)
    print(report)  # noqa: T201 - the figures belong in the test log
    failures = camp.failures(pending=False)
    assert not failures, f"{report}\nFAILURES:\n{camp.describe(failures)}"
    assert len({r.index for r in camp.records}) == (len(only) if only else n)


def test_fuzz_default(tmp_path):
    """At least 200 mutated inputs (seeded) in the default run: every outcome holds."""
    _fuzz(tmp_path, DEFAULT_N)


@pytest.mark.slow
def test_fuzz_slow(tmp_path):
    """5,000 mutated inputs."""
    _fuzz(tmp_path, SLOW_N)


def test_known_pending_items_are_documented():
    """Each pending item names its issue-19 item; the lead empties the list after merging."""
    assert set(KNOWN_PENDING) <= {"W1", "W2", "W6", "C4", "C5", "M1"}
    assert all(len(text) > 20 for text in KNOWN_PENDING.values())
