"""README "Compare your model": its commands, run exactly as written (through bash, with
the installed `e2net-eval` entry point using this checkout), on phantom data laid out as the
section describes: LiTS label files alone, nnU-Net-named and MONAI-named predictions."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from e2net_eval.data import write_phantom
from e2net_eval.data.phantom import PhantomSpec

REPO = Path(__file__).resolve().parents[2]
N = 5


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Compare your model", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def make_data(root: Path) -> None:
    """labels/segmentation-N.nii only; predictions/nnunet/N.nii.gz and
    predictions/monai/volume-N/volume-N_seg.nii.gz, deterministic perturbations."""
    write_phantom(root / "phantom", PhantomSpec("lits", N, seed=13, size=32, slices=(8, 10)))
    (root / "labels").mkdir()
    for i in range(N):
        src = root / "phantom" / f"segmentation-{i}.nii"
        shutil.copy(src, root / "labels")
        img = nib.load(str(src), mmap=False)
        label = np.asarray(img.dataobj).astype(np.uint8)
        nnunet = np.roll(label, 1, axis=0)
        monai = np.roll(label, i % 3, axis=1).astype(np.float32)  # MONAI writes float32
        out = root / "predictions" / "nnunet" / f"{i}.nii.gz"
        out.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(nnunet, img.affine), str(out))
        out = root / "predictions" / "monai" / f"volume-{i}" / f"volume-{i}_seg.nii.gz"
        out.parent.mkdir(parents=True)
        nib.save(nib.Nifti1Image(monai, img.affine), str(out))
    shutil.rmtree(root / "phantom")


def test_readme_compare_section_runs_as_written(tmp_path):
    commands = readme_commands()
    assert [c.split()[:2] for c in commands] == [
        ["e2net-eval", "evaluate"],
        ["e2net-eval", "evaluate"],
        ["e2net-eval", "compare"],
    ]
    make_data(tmp_path)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    assert shutil.which("e2net-eval", path=env["PATH"]), "install the package (README)"
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, (command, done.stderr)
    out = tmp_path / "comparison"
    for name in ("report.md", "report.tex", "tables.csv", "report.html"):
        assert (out / name).is_file()
    with open(out / "tables.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    paired = {r["row"] for r in rows if r["table"] == "paired"}
    assert paired == {"monai vs nnunet (baseline), liver", "monai vs nnunet (baseline), tumour"}
    n = {r["text"] for r in rows if r["table"] == "paired" and r["column"] == "n"}
    assert n == {str(N)}
