"""The project's own regression gate: a fast deterministic ablation on the phantom, gated by
`e2net-eval regress` against the baseline committed in `leaderboards/ci-baseline/`.

Regenerate the baseline (deliberately, after a change that is meant to move the numbers):

    e2net-eval ablation --max-steps 40 -o runs/ci-gate
    python tests/workflows/test_ci_gate.py runs/ci-gate   # copies the summaries

Training on the CPU is deterministic for a seed and a torch version; the tolerances below
absorb floating-point differences between CPUs and catch real regressions.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / "leaderboards" / "ci-baseline"
CI_STEPS = 40
TOLERANCES = (
    "--default-tolerance",
    "0.02",  # Dice, VOE, |RVD|, burden, detection: 2 points
    "--tolerance",
    "*.assd=1.5",  # mm (phantom voxels are about 3 mm)
    "--tolerance",
    "*.rmsd=2.0",
    "--tolerance",
    "*.mssd=8.0",
)


def test_fast_ablation_does_not_regress(tmp_path, run_cli):
    run = tmp_path / "ci-gate"
    code, out, err = run_cli("ablation", "--max-steps", CI_STEPS, "-o", run)
    assert code == 0, err
    assert (run / "report" / "report.html").is_file()
    code, out, err = run_cli("regress", run, BASELINE, *TOLERANCES)
    assert code == 0, f"metrics regressed against {BASELINE}:\n{out}\n{err}"
    assert "WORSE" not in out


def test_gate_fails_on_a_worse_baseline(tmp_path, run_cli):
    """The same gate must say no when the baseline claims better numbers than we have."""
    import json

    worse = tmp_path / "better-baseline"
    shutil.copytree(BASELINE, worse)
    summary = next(worse.glob("eval/lits_val/stage1/summary.json"))
    data = json.loads(summary.read_text())
    data["regions"]["liver"]["dice_per_case"] = min(
        1.0, data["regions"]["liver"]["dice_per_case"] + 0.05
    )
    summary.write_text(json.dumps(data))
    code, out, err = run_cli("regress", BASELINE, worse, *TOLERANCES)
    assert code == 1, out + err


def _refresh(run: Path) -> None:
    """Copy a fast ablation's summaries into the committed baseline."""
    if BASELINE.exists():
        shutil.rmtree(BASELINE)
    for src in sorted(run.glob("eval/*/*/summary.json")):
        dst = BASELINE / src.relative_to(run)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    shutil.copy2(run / "ablation.json", BASELINE / "ablation.json")


if __name__ == "__main__":
    _refresh(Path(sys.argv[1]))
