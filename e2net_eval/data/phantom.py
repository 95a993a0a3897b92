"""Write phantom cases (see `anatomy`) in the LiTS, Task03 (MSD) or 3DIRCADb DICOM layout.

Case index ``i`` is written as LiTS ``volume-i``, Task03 ``liver_i``, and 3DIRCADb
``3Dircadb1.K`` with K = 1, 2, ... in the order the indices are given (so which LiTS case a
3DIRCADb patient is must be found from the data, as with the real sets). ``phantom.json``
(lits, ircadb) or ``dataset.json`` (msd) records seed, size and the index of every case.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from tqdm import tqdm

from e2net_eval.data.anatomy import DEFAULT_SIZE, DEFAULT_SLICES, PhantomCase, phantom_case
from e2net_eval.data.case import LIVER
from e2net_eval.data.dicom import LPS_TO_RAS
from e2net_eval.data.nifti import write_nifti
from e2net_eval.errors import InputError
from e2net_eval.util.jsonio import dump_json
from e2net_eval.util.outdir import result_folder

log = logging.getLogger(__name__)
LAYOUTS = ("lits", "msd", "ircadb")
HU_OFFSET = 1024  # DICOM stores HU + 1024 unsigned, RescaleIntercept -1024 (as scanners do)
TUMOUR_FOLDER_STYLES = ("livertumor{:02d}", "livertumor{}", "livertumor", "livertumors")


def unit_spacing_affine(affine: np.ndarray) -> np.ndarray:
    """The affine a LiTS header of an IRCAD case carries: same axes and signs, 1 mm spacing."""
    out = affine.copy()
    out[:3, :3] = np.sign(np.round(affine[:3, :3], 6))
    return out


@dataclass(frozen=True)
class PhantomSpec:
    """Which phantom cases to write, and how: the same spec writes the same bytes.

    Indices are `indices` if given, else ``start .. start + n_cases - 1``. `unit_spacing`
    lists indices whose LiTS/MSD header gets 1x1x1 mm spacing (the LiTS copies of IRCAD
    cases). `zipped` writes 3DIRCADb folders as ``PATIENT_DICOM.zip``/``MASKS_DICOM.zip``;
    `gzip` NIfTI as ``.nii.gz`` (default: msd yes, lits no).
    """

    layout: str = "lits"
    n_cases: int | None = None
    seed: int = 0
    indices: Sequence[int] | None = None
    start: int = 0
    size: int = DEFAULT_SIZE
    slices: tuple[int, int] = DEFAULT_SLICES
    zipped: bool = False
    gzip: bool | None = None
    unit_spacing: Iterable[int] = ()

    def case_indices(self) -> list[int]:
        """The indices to write, after checking every field (InputError)."""
        if self.layout not in LAYOUTS:
            raise InputError(f"unknown layout {self.layout!r} (choose {', '.join(LAYOUTS)})")
        indices = self.indices
        if indices is None:
            if self.n_cases is None or self.n_cases < 1:
                raise InputError("need --cases N >= 1 or --indices")
            indices = list(range(self.start, self.start + self.n_cases))
        indices = [int(i) for i in indices]
        if not indices or min(indices) < 0 or len(set(indices)) != len(indices):
            raise InputError(f"case indices must be distinct and >= 0, got {indices}")
        seed, size, slices = self.seed, self.size, self.slices
        if seed < 0 or size < 16 or slices[0] < 2 or slices[1] < slices[0]:
            raise InputError(f"bad phantom parameters: seed {seed}, size {size}, slices {slices}")
        return indices

    @property
    def nifti_ext(self) -> str:
        return ".nii.gz" if ((self.layout == "msd") if self.gzip is None else self.gzip) else ".nii"


def write_phantom(
    out: str | Path, spec: PhantomSpec, *, overwrite: bool = False, progress: bool = False
) -> list[int]:
    """Write the phantom cases of `spec` to `out` (atomically, by
    `util.outdir.result_folder`); returns the case indices written."""
    indices = spec.case_indices()
    unit = set(int(i) for i in spec.unit_spacing)
    records = []
    with result_folder(out, kind="dataset", overwrite=overwrite) as tmp:
        for k, idx in enumerate(tqdm(indices, desc="phantom", disable=None if progress else True)):
            case = phantom_case(spec.seed, idx, spec.size, spec.slices)
            case_id = _write_case(tmp, spec, case, k, unit_spacing=idx in unit)
            records.append(
                {
                    "case_id": case_id,
                    "index": idx,
                    "flips": list(case.flips),
                    "unit_spacing": idx in unit,
                    "tumours": len(case.tumour_masks),
                }
            )
        _write_index(tmp, spec, records)
    log.info("wrote %d %s phantom cases to %s", len(indices), spec.layout, out)
    return indices


def _write_case(tmp: Path, spec: PhantomSpec, case: PhantomCase, k: int, unit_spacing: bool):
    """Write the `k`-th case of the set in `spec.layout`; returns its case id."""
    idx = case.index
    if spec.layout == "ircadb":
        case_id = f"3Dircadb1.{k + 1}"
        write_ircadb_patient(tmp / case_id, case, zipped=spec.zipped)
        return case_id
    affine = unit_spacing_affine(case.affine) if unit_spacing else case.affine
    ext = spec.nifti_ext
    image, label = (
        (f"volume-{idx}{ext}", f"segmentation-{idx}{ext}")
        if spec.layout == "lits"
        else (f"imagesTr/liver_{idx}{ext}", f"labelsTr/liver_{idx}{ext}")
    )
    write_nifti(tmp / image, case.image, affine)
    write_nifti(tmp / label, case.label, affine)
    return str(idx)


def _write_index(tmp: Path, spec: PhantomSpec, records: list[dict]) -> None:
    """``phantom.json`` (lits, ircadb) or the Decathlon ``dataset.json`` (msd)."""
    meta = {
        "generator": "e2net_eval.data.anatomy",
        "seed": spec.seed,
        "size": spec.size,
        "slices": list(spec.slices),
        "layout": spec.layout,
        "cases": records,
    }
    if spec.layout != "msd":
        dump_json(tmp / "phantom.json", meta)
        return
    (tmp / "imagesTs").mkdir(exist_ok=True)
    ext = spec.nifti_ext
    dataset = {
        "name": "Liver (e2net-eval phantom)",
        "modality": {"0": "CT"},
        "labels": {"0": "background", "1": "liver", "2": "cancer"},
        "numTraining": len(records),
        "numTest": 0,
        "training": [
            {
                "image": f"./imagesTr/liver_{r['index']}{ext}",
                "label": f"./labelsTr/liver_{r['index']}{ext}",
            }
            for r in records
        ],
        "test": [],
        "phantom": meta,
    }
    (tmp / "dataset.json").write_text(json.dumps(dataset, indent=2) + "\n")


def _uid(*parts: object) -> str:
    return generate_uid(entropy_srcs=["e2net-eval-phantom", *(str(p) for p in parts)])


def _slice_dataset(
    case: PhantomCase, k: int, pixels: np.ndarray, series: str, study: str, name: str
) -> pydicom.Dataset:
    """One DICOM slice; `pixels` is (Rows, Columns). Geometry comes from the case's affine."""
    lps = LPS_TO_RAS @ case.affine
    col_step, row_step = lps[:3, 0], lps[:3, 1]  # along columns (axis 0) and rows (axis 1)
    pos = lps[:3, 3] + lps[:3, 2] * k
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    sop = _uid(case.seed, case.index, name, k)
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop
    ds.Modality, ds.PatientID = "CT", f"phantom-{case.seed}-{case.index}"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.SeriesDescription = name
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = [round(float(v), 6) for v in pos]
    ds.ImageOrientationPatient = [
        round(float(v), 8)
        for v in (*(col_step / np.linalg.norm(col_step)), *(row_step / np.linalg.norm(row_step)))
    ]
    ds.PixelSpacing = [
        round(float(np.linalg.norm(row_step)), 6),
        round(float(np.linalg.norm(col_step)), 6),
    ]
    ds.SliceThickness = round(float(np.linalg.norm(lps[:3, 2])), 6)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def _series(case: PhantomCase, volume: np.ndarray, name: str, study: str, *, image: bool):
    """Yield (file name, encoded DICOM bytes) for every slice of `volume` (X, Y, Z)."""
    series = _uid(case.seed, case.index, "series", name)
    for k in range(volume.shape[2]):
        if image:
            px = (volume[:, :, k].T.astype(np.int32) + HU_OFFSET).clip(0, 65535).astype(np.uint16)
        else:
            px = (volume[:, :, k].T > 0).astype(np.uint8) * np.uint8(255)
        ds = _slice_dataset(case, k, px, series, study, name)
        if image:
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -HU_OFFSET, 1, "HU"
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        yield f"image_{k}", buf.getvalue()


def write_ircadb_patient(folder: Path, case: PhantomCase, *, zipped: bool = False) -> None:
    """Write one patient as ``PATIENT_DICOM`` and ``MASKS_DICOM/<structure>`` DICOM series."""
    study = _uid(case.seed, case.index, "study")
    masks: dict[str, np.ndarray] = {"liver": case.label >= LIVER}
    style = TUMOUR_FOLDER_STYLES[case.index % len(TUMOUR_FOLDER_STYLES)]
    if len(case.tumour_masks) > 1 and "{" not in style:
        style = TUMOUR_FOLDER_STYLES[0]
    if "{" in style:
        for t, m in enumerate(case.tumour_masks, start=1):
            masks[style.format(t)] = m
    elif case.tumour_masks:
        masks[style] = case.tumour_masks[0]
    masks.update(case.other_masks)  # distractors: leftsurretumor, livercyst (not tumour)
    groups = [("PATIENT_DICOM", "", case.image, True)]
    groups += [("MASKS_DICOM", f"{name}/", arr, False) for name, arr in masks.items()]
    folder.mkdir(parents=True)
    if zipped:
        for top in ("PATIENT_DICOM", "MASKS_DICOM"):
            with zipfile.ZipFile(folder / f"{top}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
                for g_top, sub, arr, is_image in groups:
                    if g_top != top:
                        continue
                    for fname, data in _series(case, arr, f"{top}/{sub}", study, image=is_image):
                        zf.writestr(f"{top}/{sub}{fname}", data)
        return
    for top, sub, arr, is_image in groups:
        target = folder / top / sub
        target.mkdir(parents=True, exist_ok=True)
        for fname, data in _series(case, arr, f"{top}/{sub}", study, image=is_image):
            (target / fname).write_bytes(data)
