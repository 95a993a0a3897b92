"""Dataset-level operations behind `datasets check` and `datasets convert`."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from e2net_eval.data.case import LIVER, TUMOUR, Case
from e2net_eval.data.dataset import Dataset
from e2net_eval.data.nifti import check_label_values, write_nifti
from e2net_eval.util.faults import fault_point
from e2net_eval.util.outdir import result_folder

log = logging.getLogger(__name__)
HU_PLAUSIBLE = (-3100.0, 3100.0)  # beyond this the LiTS outliers end; flagged, not fatal


def describe_case(case: Case) -> dict:
    """Summary of one loaded case for `datasets check`: shape, spacing, HU, labels, problems.

    A case read without its image (a folder of reference labels) has no HU range (None)."""
    counts = check_label_values(case.label, case.case_id, case.label_path)
    lo = hi = None
    if case.image is not None:
        lo, hi = float(case.image.min()), float(case.image.max())
    problems = []
    if counts[LIVER] + counts[TUMOUR] == 0:
        problems.append("no liver in the label")
    if np.allclose(case.spacing, 1.0):
        problems.append("spacing is exactly 1x1x1 mm (the IRCAD cases in LiTS carry this wrong)")
    if lo is not None and (lo < HU_PLAUSIBLE[0] or hi > HU_PLAUSIBLE[1]):
        problems.append(
            f"HU range {lo:g}..{hi:g} is outside {HU_PLAUSIBLE[0]:g}..{HU_PLAUSIBLE[1]:g}"
        )
    if case.extra.get("other_folders"):
        problems.append("not read as tumour: " + ", ".join(case.extra["other_folders"]))
    return {
        "case": case.case_id,
        "shape": list(case.shape),
        "spacing": [round(float(s), 4) for s in case.spacing],
        "dtype": None if case.image is None else str(case.image.dtype),
        "hu_min": lo,
        "hu_max": hi,
        "label_values": [int(v) for v in np.nonzero(counts)[0]],
        "liver_voxels": int(counts[LIVER] + counts[TUMOUR]),
        "tumour_voxels": int(counts[TUMOUR]),
        "tumour": bool(counts[TUMOUR] > 0),
        "problems": problems,
    }


def convert_dataset(
    ds: Dataset, out: str | Path, *, overwrite: bool = False, progress: bool = False
) -> list[str]:
    """Write every case of `ds` as ``volume-<id>.nii.gz`` / ``segmentation-<id>.nii.gz``.

    The image keeps its dtype (int16 or float32), the label is uint8, the affine is the
    case's (for 3DIRCADb the DICOM geometry, see `dicom`). All or nothing: the folder
    appears only when every case converted. OUT follows `util.outdir.result_folder`: never
    the input, inside it or around it; a non-empty OUT only with `overwrite`, and only if
    e2net-eval wrote it.
    """
    ids = ds.case_ids()
    with result_folder(out, kind="dataset", inputs=[ds.root], overwrite=overwrite) as tmp:
        for cid in tqdm(ids, desc="convert", disable=None if progress else True):
            case = ds.load(cid)
            write_nifti(tmp / f"volume-{cid}.nii.gz", case.image, case.affine)
            write_nifti(tmp / f"segmentation-{cid}.nii.gz", case.label, case.affine)
            del case
            fault_point("convert.case")
    log.info("converted %d %s cases to %s", len(ids), ds.layout, out)
    return ids
