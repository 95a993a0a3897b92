"""nibabel imported with pydicom hidden (`e2net_eval/util/imports.py`): in a fresh interpreter,
reading NIfTI loads no pydicom, a DICOM extension stays raw bytes, and the 3DIRCADb reader
still gets the real pydicom afterwards."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.nifti1 import Nifti1Extension

from e2net_eval.data import write_phantom
from e2net_eval.data.phantom import PhantomSpec

REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import json, sys
from pathlib import Path
from e2net_eval.data.nifti import read_label
from e2net_eval.data import open_dataset
labels, _, _ = read_label(Path(sys.argv[1]))
after_nifti = "pydicom" in sys.modules
import nibabel
ext = nibabel.load(sys.argv[1]).header.extensions[0]
data = open_dataset(Path(sys.argv[2]))
mask = data.load(data.case_ids()[0], image=False).label
print("@@" + json.dumps({
    "voxels": int((labels > 0).sum()), "pydicom_after_nifti": after_nifti,
    "extension": [type(ext).__name__, ext.get_code()],
    "dicom_case_voxels": int((mask > 0).sum()), "pydicom_at_end": "pydicom" in sys.modules,
}))
"""


def test_nifti_without_pydicom_then_dicom_with_it(tmp_path):
    write_phantom(tmp_path / "lits", PhantomSpec("lits", 1, seed=3, size=32, slices=(8, 10)))
    write_phantom(tmp_path / "ircadb", PhantomSpec("ircadb", 1, seed=3, size=32, slices=(8, 10)))
    src = nib.load(tmp_path / "lits" / "segmentation-0.nii")
    img = nib.Nifti1Image(np.asarray(src.dataobj), src.affine, src.header)
    img.header.extensions.append(Nifti1Extension(2, b"\x00not a DICOM header" * 3))
    nib.save(img, tmp_path / "with_ext.nii")
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "with_ext.nii"), str(tmp_path / "ircadb")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("@@")), None)
    assert line is not None, out.stderr
    seen = json.loads(line[2:])
    assert seen["voxels"] == int((np.asarray(src.dataobj) > 0).sum()) > 0
    assert seen["pydicom_after_nifti"] is False
    assert seen["extension"] == ["Nifti1Extension", 2]  # raw bytes, not parsed by pydicom
    assert seen["dicom_case_voxels"] > 0 and seen["pydicom_at_end"] is True


def test_nibabel_is_imported_in_one_place():
    """Every module of the package gets nibabel from `util.imports.import_nibabel`."""
    found = []
    for path in sorted(
        [*(REPO / "e2net_eval").rglob("*.py"), *(REPO / "reference_models").rglob("*.py")]
    ):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            if any(n == "nibabel" or n.startswith("nibabel.") for n in names):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == [], found
