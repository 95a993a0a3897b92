"""The project's own regression gate: a phantom ablation gated by `e2net-eval regress`
against the baseline committed in `leaderboards/ci-baseline/`, and proof that the gate
guards tumours.

The CI run is the default ablation with every configuration at `CI_STEPS` optimiser steps
(`conftest.py`; the default gives stage 2 more): every stage-2 configuration segments tumours in it
(`test_the_baseline_carries_tumour_signal`), and deleting the tumour predictions while the
liver stays as it is fails the gate (`test_the_gate_fails_without_tumours`).

Tolerance (measured 2026-11-29 on this machine kind, AMD EPYC with AVX-512, torch 2.13.0
CPU, one torch thread per worker; docs/reports.md, "This project's gate"): the CI ablation
run with one worker, with two, and with two again gave bit-identical weights (SHA-256 of
every configuration's parameters), bit-identical predictions (144 files) and summaries
equal to the last bit but for RMSD (1e-16: numpy's summation over differently aligned
buffers), which `regress` ignores (1e-12). So the run-to-run spread is 0 and the gate allows
no worsening (`GATE_TOLERANCE`). The same run with torch and oneDNN held to their AVX2
kernels (``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``, as on an older CPU) trained
different weights from the first step on, and its metrics moved by up to 0.12 tumour Dice per
case (LiTS validation; 0.22 on 3DIRCADb), 0.39 lesion precision and 28 mm MSSD; on such a
machine the gate cannot hold and the baseline must be regenerated there.

A machine of another kind has its own baseline beside the default one:
`leaderboards/ci-baseline-<kind>/` with the `machine.json` (`tests/helpers/cpu_numerics.py`:
vendor, torch version and CPU kernel level, AVX-512/AMX extensions) of the machine it was made
on; the gate uses the one whose `machine.json` equals this machine's, else the default
(made on the AMD EPYC kind above, which CI runs on). `ci-baseline-intel-spr/` was made on
2026-12-02 on an Intel Xeon with AVX-512 and AMX (torch 2.13.0): there the default
baseline's run gave 189 worse metrics, while two runs of its own agreed at tolerance 0.

Regenerate the baseline (deliberately, after a change meant to move the numbers):

    e2net-eval ablation --max-steps 300 --workers 1 -o runs/ci-gate
    python -m tests.workflows.test_ci_gate runs/ci-gate          # the default baseline
    python -m tests.workflows.test_ci_gate runs/ci-gate KIND     # ci-baseline-KIND + machine.json

(one worker: the test runs with the default, two on this machine, so every CI run checks
again that the worker count changes nothing).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers.cpu_numerics import machine_baseline, numerics_key, write_baseline
from tests.workflows.conftest import GATE_ARGS, copy_run

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BASELINE = REPO / "leaderboards" / "ci-baseline"


BASELINE = machine_baseline(DEFAULT_BASELINE)
GATE_TOLERANCE = 0.0  # the measured run-to-run spread (module docstring)
TOLERANCES = ("--default-tolerance", str(GATE_TOLERANCE))


@pytest.fixture(scope="module")
def gate_run(tmp_path_factory, gate_prefix):
    """The CI ablation, once for the module (the default worker count: in parallel),
    resumed from the session's phantom, overlap and split (`conftest.gate_prefix`, the
    same steps a fresh run makes first)."""
    from e2net_eval.cli import main

    run = copy_run(gate_prefix, tmp_path_factory.mktemp("ci") / "ci-gate")
    with pytest.raises(SystemExit) as exc:
        main([*GATE_ARGS, "-o", str(run)])
    assert exc.value.code == 0
    return run


def _stage2() -> list[str]:
    from reference_models.registry import list_models

    return list_models(stage=2)


def test_the_ci_ablation_does_not_regress(gate_run, run_cli):
    assert (gate_run / "report" / "report.html").is_file()
    code, out, err = run_cli("regress", gate_run, BASELINE, *TOLERANCES)
    assert code == 0, f"metrics regressed against {BASELINE}:\n{out}\n{err}"
    assert "WORSE" not in out


def test_the_baseline_carries_tumour_signal():
    """Every stage-2 configuration segments tumours in the committed baseline: tumour Dice
    is not the share of tumour-free cases, and lesions are detected."""
    for config in _stage2():
        summary = json.loads((BASELINE / "eval" / "lits_val" / config / "summary.json").read_text())
        cases = summary["metric_per_case"]
        tumour_free = sum(c["tumour_burden"]["reference"] == 0 for c in cases) / len(cases)
        tumour = summary["regions"]["tumour"]
        assert tumour["dice_global"] > 0.3, config
        assert tumour["dice_per_case"] > tumour_free + 0.1, config
        assert summary["detection"]["f1"] > 0, config


def test_the_gate_fails_without_tumours(gate_run, tmp_path, run_cli):
    """The CI run's predictions with every tumour voxel turned into liver: the liver is
    unchanged, so only tumour metrics may get worse, and they must."""
    import nibabel as nib
    import numpy as np

    from e2net_eval.report import regress

    run = tmp_path / "no-tumour"
    shutil.copytree(gate_run, run, ignore=shutil.ignore_patterns("train", "report", "data"))
    lits = gate_run / "data" / "lits"
    split = json.loads((gate_run / "split.json").read_text())
    for config in _stage2():
        pred = run / "pred" / "lits_val" / config
        for path in pred.glob("*.nii.gz"):
            img = nib.load(str(path))
            labels = np.asarray(img.dataobj)
            labels[labels == 2] = 1
            nib.save(nib.Nifti1Image(labels, img.affine, img.header), str(path))
        out = run / "eval" / "lits_val" / config
        # the same protocol as the run's own evaluation: `regress` refuses another one
        protocol = json.loads((out / "summary.json").read_text())["meta"]["protocol"]
        shutil.rmtree(out)
        args = ["evaluate", pred, lits, "-o", out, "--no-progress", "--protocol", protocol]
        for case in split["validation"]:
            args += ["--case", case]
        code, _, err = run_cli(*args)
        assert code == 0, err
    code, out, err = run_cli("regress", run, BASELINE, *TOLERANCES)
    assert code == 1, out + err
    deltas = regress.compare(regress.load_metrics(run), regress.load_metrics(BASELINE))
    worse = [d.key for d in deltas if d.status == "worse"]  # eval/<set>/<config>/<metric>
    assert worse and all(k.split("/")[1] == "lits_val" for k in worse)
    sections = {k.split("/")[3].split(".")[0] for k in worse}
    assert sections <= {"tumour", "tumour_burden", "detection", "panoptic"}, sections
    for config in _stage2():
        assert f"eval/lits_val/{config}/tumour.dice_global" in worse
        liver = [d for d in deltas if d.key.startswith(f"eval/lits_val/{config}/liver.")]
        assert liver and all(d.status in ("ok", "not gated", "undefined") for d in liver)


def test_gate_fails_on_a_worse_baseline(tmp_path, run_cli):
    """The same gate must say no when the baseline claims better numbers than we have."""
    worse = tmp_path / "better-baseline"
    shutil.copytree(BASELINE, worse)
    summary = next(worse.glob("eval/lits_val/dist_dcff/summary.json"))
    data = json.loads(summary.read_text())
    data["regions"]["tumour"]["dice_per_case"] = min(
        1.0, data["regions"]["tumour"]["dice_per_case"] + 0.05
    )
    summary.write_text(json.dumps(data))
    code, out, err = run_cli("regress", BASELINE, worse, *TOLERANCES)
    assert code == 1, out + err


def test_a_baseline_is_chosen_by_the_machine_json(tmp_path):
    """The baseline whose machine.json equals this machine's key, else the default."""
    default = tmp_path / "ci-baseline"
    for kind, key in (
        ("other", {**numerics_key(), "vendor": "elsewhere"}),
        ("here", numerics_key()),
    ):
        (tmp_path / f"ci-baseline-{kind}").mkdir()
        (tmp_path / f"ci-baseline-{kind}" / "machine.json").write_text(json.dumps(key))
    assert machine_baseline(default) == tmp_path / "ci-baseline-here"
    (tmp_path / "ci-baseline-here" / "machine.json").unlink()
    assert machine_baseline(default) == default


if __name__ == "__main__":
    write_baseline(Path(sys.argv[1]), DEFAULT_BASELINE, *sys.argv[2:3])
