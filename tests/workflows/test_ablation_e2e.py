"""The real default ablation on the phantom, end to end (slow: trains six networks), and the
README's main job itself against `leaderboards/phantom-baseline` (or its twin made on a
machine of this one's kind: tests/helpers/cpu_numerics.py).

Regenerate that baseline (deliberately, after a change meant to move the numbers):

    e2net-eval ablation -o runs/ablation
    python -m tests.workflows.test_ablation_e2e runs/ablation         # phantom-baseline
    python -m tests.workflows.test_ablation_e2e runs/ablation KIND    # phantom-baseline-KIND
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from e2net_eval.workflows.ablation.args import PHANTOM_IRCADB_INDICES
from reference_models import list_models
from tests.helpers.cpu_numerics import machine_baseline, write_baseline

pytestmark = pytest.mark.slow

STEPS = "3"  # enough to exercise every stage; the numbers are not the point here
PHANTOM_BASELINE = Path(__file__).resolve().parents[2] / "leaderboards" / "phantom-baseline"


def test_ablation_end_to_end(tmp_path, run_cli):
    run = tmp_path / "run"
    code, out, err = run_cli("ablation", "-o", run, "--max-steps", STEPS, "--device", "cpu")
    assert code == 0, err
    for set_name in ("lits_val", "ircadb"):
        for config in list_models():
            summary = json.loads((run / "eval" / set_name / config / "summary.json").read_text())
            assert summary["meta"]["ablation"]["protocol"] == "leak-free"
            assert summary["n_cases"] >= 1
    info = json.loads((run / "ablation.json").read_text())
    assert len(info["overlap"]) == len(PHANTOM_IRCADB_INDICES)  # planted copies found
    assert not set(info["split"]["train"]) & {m["lits"] for m in info["overlap"]}
    html = (run / "report" / "report.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', html)) >= 6  # incl. slice figures
    state = (run / "ablation_state.json").read_text()
    code, _, err = run_cli("ablation", "-o", run, "--max-steps", STEPS, "--device", "cpu")
    assert code == 0, err
    assert (run / "ablation_state.json").read_text() == state  # nothing redone


def test_the_main_job_equals_the_phantom_baseline_at_tolerance_zero(tmp_path, run_cli):
    """The README's main job, as written (defaults: 300/450 steps, a worker per core), gives
    every metric of the committed baseline exactly, both ways (none better, none worse)."""
    run = tmp_path / "runs" / "ablation"
    code, _, err = run_cli("ablation", "-o", run)
    assert code == 0, err
    baseline = machine_baseline(PHANTOM_BASELINE)
    for current, base in ((run, baseline), (baseline, run)):
        code, out, err = run_cli("regress", current, base, "--default-tolerance", "0")
        assert code == 0, f"{current} vs {base}:\n{out}\n{err}"
        assert "ok: 492 metric(s) compared" in out


def test_two_replicates_end_to_end_by_extending_a_run(tmp_path, run_cli):
    """A real phantom ablation of one replicate, extended to two: replicate 0 is kept as it
    was, replicate 1 trains on its own split, and the report shows both's spread and wins."""
    run = tmp_path / "run"
    base = ("ablation", "-o", run, "--max-steps", STEPS, "--device", "cpu")
    code, _, err = run_cli(*base)
    assert code == 0, err
    kept = {
        p: p.read_bytes() for p in sorted((run / "eval").glob("*/*/per_case.csv"))
    }  # replicate 0's numbers
    code, _, err = run_cli(*base, "--replicates", "2")
    assert code == 0, err
    assert kept and all(p.read_bytes() == data for p, data in kept.items())
    split0 = json.loads((run / "split.json").read_text())
    split1 = json.loads((run / "replicates" / "1" / "split.json").read_text())
    assert split1["seed"] == 1 and split1["validation"] != split0["validation"]
    assert split1["exclude"] == split0["exclude"]  # the same phantom, the same overlap
    md = (run / "report" / "report.md").read_text()
    assert "Table 3 style over 2 replicates" in md and "Which configuration wins over 2" in md
    wins = [
        line
        for line in (run / "report" / "tables.csv").read_text().splitlines()
        if line.startswith("wins_lits_val,") and ",wins," in line
    ]
    assert len(wins) >= len(list_models()) - 1  # every consecutive pair, liver at least


if __name__ == "__main__":
    write_baseline(Path(sys.argv[1]), PHANTOM_BASELINE, *sys.argv[2:3])
