"""Light entry points: what `evaluate`, `regress`, `leaderboard`, `compare` and `ablation
--help` import (submitit only ever with `ablation --launcher slurm|submitit-local`). Each check runs the real CLI in a fresh interpreter and lists the heavy packages
that ended up in `sys.modules`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = (
    "torch",
    "numpy",
    "scipy",
    "matplotlib",
    "nibabel",
    "pydicom",
    "edt",
    "cc3d",
    "tqdm",
    "pandas",
    "submitit",
)

_PROBE = """
import json, sys
sys.modules.update(dict.fromkeys(json.loads(BLOCKED)))  # None: cannot be imported
from e2net_eval.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
loaded = {m.split(".")[0] for m, module in sys.modules.items() if module is not None}
heavy = sorted(loaded & set(json.loads(HEAVY)))
print("@@" + json.dumps({"code": code, "heavy": heavy}))
"""


def _imports(*args: str, blocked: tuple[str, ...] = ()) -> tuple[int, set[str]]:
    """Exit code and heavy packages imported of `e2net-eval ARGS`, run where the packages
    of `blocked` cannot be imported."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = _PROBE.replace("HEAVY", repr(json.dumps(HEAVY)))
    code = code.replace("BLOCKED", repr(json.dumps(blocked)))
    out = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("@@"))
    result = json.loads(line[2:])
    return result["code"], set(result["heavy"])


@pytest.mark.parametrize(
    "args",
    [
        ("evaluate", "--help"),
        ("regress", "--help"),
        ("leaderboard", "--help"),
        ("compare", "--help"),
        ("ablation", "--help"),
    ],
)
def test_help_of_light_commands_imports_nothing_heavy(args):
    code, heavy = _imports(*args)
    assert code == 0 and heavy == set(), heavy


def test_regress_imports_only_json_and_registry_code():
    base = REPO / "leaderboards" / "ci-baseline"
    code, heavy = _imports("regress", base, base)
    assert code == 0 and heavy == set(), heavy


def test_leaderboard_imports_nothing_heavy():
    code, heavy = _imports("leaderboard", "--table", "3")
    assert code == 0 and heavy == set(), heavy


def test_evaluate_of_nifti_scores_without_torch_matplotlib_or_pydicom(tmp_path):
    from e2net_eval.data import write_phantom
    from e2net_eval.data.phantom import PhantomSpec

    write_phantom(tmp_path / "ref", PhantomSpec("lits", 1, seed=1, size=32, slices=(8, 10)))
    preds = tmp_path / "pred"
    preds.mkdir()
    (preds / "0.nii").write_bytes((tmp_path / "ref" / "segmentation-0.nii").read_bytes())
    code, heavy = _imports("evaluate", preds, tmp_path / "ref", "-o", tmp_path / "out")
    assert code == 0, heavy
    assert not heavy & {"torch", "matplotlib", "pydicom"}, heavy  # nibabel's pydicom hidden
    assert (tmp_path / "out" / "summary.json").is_file()
    # Only a 3DIRCADb reference needs the DICOM reader: evaluate runs where pydicom cannot
    # be imported at all.
    code, heavy = _imports(
        "evaluate", preds, tmp_path / "ref", "-o", tmp_path / "out2", blocked=("pydicom",)
    )
    assert code == 0 and "pydicom" not in heavy, heavy
    assert (tmp_path / "out2" / "summary.json").is_file()


def test_compare_runs_without_torch(tmp_path):
    """compare reads two evaluations (pandas), draws (matplotlib) and never imports torch."""
    from e2net_eval.data import write_phantom
    from e2net_eval.data.phantom import PhantomSpec
    from e2net_eval.metrics import evaluate

    write_phantom(tmp_path / "ref", PhantomSpec("lits", 2, seed=1, size=32, slices=(8, 10)))
    preds = tmp_path / "pred"
    preds.mkdir()
    for i in range(2):
        (preds / f"{i}.nii").write_bytes((tmp_path / "ref" / f"segmentation-{i}.nii").read_bytes())
    for name in ("a", "b"):
        evaluate(preds, tmp_path / "ref", tmp_path / name, progress=False)
    code, heavy = _imports(
        "compare", f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}", "-o", tmp_path / "cmp"
    )
    assert code == 0, heavy
    assert "torch" not in heavy and {"pandas", "matplotlib"} <= heavy, heavy
    assert (tmp_path / "cmp" / "report.html").is_file()


def test_a_local_ablation_does_not_import_submitit(tmp_path):
    """The default launcher never imports submitit (an install without the [cluster]
    extra runs it); a refused --launcher slurm run neither."""
    code, heavy = _imports("ablation", "-o", tmp_path / "r", "--configs", "nope")
    assert code == 2 and "submitit" not in heavy, heavy
    code, heavy = _imports(
        "ablation", "-o", tmp_path / "r", "--slurm-partition", "gpu", "--configs", "stage1"
    )
    assert code == 2 and "submitit" not in heavy, heavy
