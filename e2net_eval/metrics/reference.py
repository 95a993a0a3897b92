"""Open a reference dataset through the data layer (`e2net_eval.data.open_dataset`).

Until the data layer's reader lands, a minimal private reader of the LiTS layout
(``segmentation-N.nii[.gz]``) stands in so the metrics stage can be tested; it is removed
once ``open_dataset`` exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np

from e2net_eval.data.case import Case
from e2net_eval.errors import InputError


def open_reference(root: str | Path):
    """A Dataset with ``case_ids()`` and ``load(case_id, image=False, label=True)``."""
    try:
        from e2net_eval.data import open_dataset  # type: ignore[attr-defined]
    except ImportError:
        return _LitsLabels(Path(root))
    return open_dataset(root)


_SEG = re.compile(r"^segmentation-(\d+)\.nii(\.gz)?$")


class _LitsLabels:
    """Stand-in reader: LiTS reference labels only (removed when the data layer lands)."""

    layout = "lits"

    def __init__(self, root: Path):
        if not root.is_dir():
            raise InputError("reference folder does not exist", path=root)
        self.root = root
        self._files = {}
        for path in root.iterdir():
            m = _SEG.match(path.name)
            if m:
                self._files[m.group(1)] = path

    def case_ids(self) -> list[str]:
        return sorted(self._files, key=int)

    def load(self, case_id: str, image: bool = True, label: bool = True) -> Case:
        path = self._files[case_id]
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj).astype(np.uint8) if label else None
        spacing = tuple(float(s) for s in img.header.get_zooms()[:3])
        return Case(case_id, None, data, spacing, img.affine, "lits", None, path)
