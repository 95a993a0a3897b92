"""The real default ablation on the phantom, end to end (slow: trains six networks)."""

from __future__ import annotations

import json
import re

import pytest

from e2net_eval.workflows.ablation import PHANTOM_IRCADB_INDICES
from reference_models import list_models

pytestmark = pytest.mark.slow

STEPS = "3"  # enough to exercise every stage; the numbers are not the point here


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
    code, out, err = run_cli("regress", run, run)
    assert code == 0, err
