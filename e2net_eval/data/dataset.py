"""Find a dataset's layout under a root folder and load its cases lazily, one at a time.

Layouts: ``lits`` (``volume-N.nii[.gz]`` + ``segmentation-N.nii[.gz]``, in the root or one
folder below, as the LiTS batches ship), ``msd`` (Decathlon Task03: ``imagesTr/liver_N.nii.gz``,
``labelsTr/liver_N.nii.gz``, ``dataset.json``; nnU-Net's ``imagesTr/<case>_0000.nii.gz`` and
``labelsTr/<case>.nii.gz``; or a ``labelsTr`` folder itself), ``ircadb`` (``3Dircadb1.K``
patient folders, or one such folder itself) and ``labels`` (any other folder of
``<id>.nii[.gz]`` label files).

Reference labels without images are a dataset too (LiTS ``segmentation-N`` files alone, a
``labelsTr`` folder, a folder of ``<id>.nii.gz``): scoring needs no CT, so images are read
only when a caller asks for them (``load(image=True)``, the default of training and
``datasets check``/``convert``), and only then is a missing image an error.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from e2net_eval.data import nifti
from e2net_eval.data.case import Case
from e2net_eval.data.spacing import AFFINE_ATOL  # label and image affines agree to this
from e2net_eval.errors import InputError, ReadError
from e2net_eval.util.reading import file_problem, os_error_text

LAYOUTS = ("lits", "msd", "ircadb", "labels")
_LITS = re.compile(r"^(volume|segmentation)-([A-Za-z0-9_.-]+?)\.nii(\.gz)?$")
_MSD = re.compile(r"^liver_(\d+)\.nii(\.gz)?$")
_NIFTI = re.compile(r"^(.+?)\.nii(\.gz)?$")
#: nnU-Net image files carry a channel suffix; CT has one channel, ``_0000``.
_NNUNET_IMAGE = re.compile(r"^(.+)_0000\.nii(\.gz)?$")
#: A folder with this name is the label folder of a Decathlon / nnU-Net dataset.
LABEL_FOLDERS = ("labelsTr", "labelsTs")
_IRCADB = re.compile(r"^3Dircadb1\.\d+$", re.IGNORECASE)


def natural_key(text: str) -> list:
    """Sort key that orders ``2`` before ``10`` and ``3Dircadb1.2`` before ``3Dircadb1.10``."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", text)]


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _check_ids(root: Path, entries: dict[str, dict]) -> None:
    """Every case id is text every output can hold: a file name that is not valid UTF-8 (a
    byte Python keeps as a lone surrogate) is refused before any work, naming its bytes."""
    for case_id in entries:
        try:
            case_id.encode("utf-8")
        except UnicodeEncodeError:
            shown = case_id.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            where = str(root).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise InputError(
                f"case id '{shown}' (from a file name) is not valid UTF-8; rename the file",
                path=where,
            ) from None


class Dataset:
    """A lazily read collection of cases in one on-disk layout."""

    def __init__(self, root: Path, layout: str, entries: dict[str, dict]):
        _check_ids(root, entries)
        self.root, self.layout, self._entries = root, layout, entries

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r}, layout={self.layout!r}, cases={len(self)})"

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Case]:
        for case_id in self.case_ids():
            yield self.load(case_id)

    def case_ids(self) -> list[str]:
        """Case ids, sorted naturally."""
        return sorted(self._entries, key=natural_key)

    @property
    def has_images(self) -> bool:
        """False for a folder of reference labels only (no case has an image file)."""
        return self.layout == "ircadb" or any(e.get("image") for e in self._entries.values())

    def _entry(self, case_id: str) -> dict:
        if case_id not in self._entries:
            raise InputError(f"no such case in {self.layout} dataset", case=case_id, path=self.root)
        return self._entries[case_id]

    def header(self, case_id: str) -> tuple[tuple[int, ...], np.ndarray]:
        """(shape, affine) of a case's image without reading voxel data (DICOM: headers only)."""
        entry = self._entry(case_id)
        if self.layout == "ircadb":
            from e2net_eval.data import dicom  # pydicom: only 3DIRCADb needs it

            src = dicom.open_folder(entry["dir"], "PATIENT_DICOM", case_id)
            geom = dicom.read_geometry(src.get("") or next(iter(src.values())), case_id)
            return geom.shape, geom.affine
        path = entry.get("image") or entry.get("label")
        return nifti.read_header(path, case_id)

    def load(self, case_id: str, image: bool = True, label: bool = True) -> Case:
        """Read one case; InputError names the case and file on any problem."""
        entry = self._entry(case_id)
        if self.layout == "ircadb":
            from e2net_eval.data import dicom  # pydicom: only 3DIRCADb needs it

            r = dicom.read_patient(entry["dir"], case_id, image=image, label=label)
            return Case(
                case_id,
                r["image"],
                r["label"],
                r["spacing"],
                r["affine"],
                self.layout,
                r["image_path"],
                r.get("label_path"),
                {"tumour_folders": r["tumour_folders"], "other_folders": r["other_folders"]},
            )
        img_path, lab_path = entry.get("image"), entry.get("label")
        if image and img_path is None:
            raise InputError("image file missing (only a label found)", case=case_id, path=lab_path)
        if label and lab_path is None:
            raise InputError("label file missing", case=case_id, path=img_path)
        arr = lab = None
        if img_path is None and label:  # reference labels only: the label file has the geometry
            lab, affine, spacing = nifti.read_label(lab_path, case_id)
            return Case(case_id, None, lab, spacing, affine, self.layout, None, lab_path)
        if image:
            arr, affine, spacing = nifti.read_image(img_path, case_id)
            shape = arr.shape
        else:
            shape, affine = nifti.read_header(img_path or lab_path, case_id)
            spacing = None
        if label:
            lab, lab_affine, lab_spacing = nifti.read_label(lab_path, case_id)
            if lab.shape != tuple(shape):
                raise InputError(
                    f"label shape {lab.shape} != image shape {tuple(shape)} "
                    f"(of {Path(img_path).name})",
                    case=case_id,
                    path=lab_path,
                )
            if not np.allclose(lab_affine, affine, atol=AFFINE_ATOL):
                raise InputError(
                    f"label affine differs from the image affine (of {Path(img_path).name})",
                    case=case_id,
                    path=lab_path,
                )
            spacing = spacing or lab_spacing
        if spacing is None:
            spacing = tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))
        return Case(case_id, arr, lab, spacing, affine, self.layout, img_path, lab_path)


def _lits_entries(root: Path) -> dict[str, dict]:
    entries: dict[str, dict] = {}
    folders = [root] + [d for d in sorted(root.iterdir()) if d.is_dir() and _visible(d)]
    for folder in folders:
        for path in sorted(folder.iterdir()):
            m = _LITS.match(path.name)
            if not m:
                continue  # a matching name that is no readable file is reported when read
            kind = "image" if m.group(1) == "volume" else "label"
            entry = entries.setdefault(m.group(2), {})
            if kind in entry:
                raise InputError(
                    f"two files for one case ({entry[kind].name})", case=m.group(2), path=path
                )
            entry[kind] = path
    return entries


def _msd_id(stem: str) -> str:
    """Task03's ``liver_N`` is case ``N``; any other nnU-Net case identifier is kept."""
    m = _MSD.match(f"{stem}.nii")
    return m.group(1) if m else stem


def _add(entries: dict[str, dict], case_id: str, kind: str, path: Path) -> None:
    entry = entries.setdefault(case_id, {})
    if kind in entry:
        raise InputError(f"two files for one case ({entry[kind].name})", case=case_id, path=path)
    entry[kind] = path


def _label_files(folder: Path, entries: dict[str, dict], case_id) -> None:
    """Every visible ``<stem>.nii[.gz]`` file of `folder` as the label of ``case_id(stem)``."""
    for path in sorted(folder.iterdir()):
        m = _NIFTI.match(path.name)
        if m and _visible(path):  # a matching name that is no readable file: reported on reading
            _add(entries, case_id(m.group(1)), "label", path)


def _msd_entries(root: Path) -> dict[str, dict]:
    """Task03 (``imagesTr/liver_N``) or nnU-Net (``imagesTr/<case>_0000``) images and
    ``labelsTr/<case>`` labels; `root` may be the ``labelsTr`` folder itself (labels only)."""
    if root.name in LABEL_FOLDERS:
        entries: dict[str, dict] = {}
        _label_files(root, entries, _msd_id)
        return entries
    manifest = root / "dataset.json"
    if manifest.exists():
        try:
            json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable dataset.json ({exc})", path=manifest) from None
    entries = {}
    if (root / "labelsTr").is_dir():
        _label_files(root / "labelsTr", entries, _msd_id)
    if (root / "imagesTr").is_dir():
        for path in sorted((root / "imagesTr").iterdir()):
            if not _visible(path):
                continue
            m = _MSD.match(path.name) or _NNUNET_IMAGE.match(path.name)
            if m:
                _add(
                    entries,
                    _msd_id(m.group(1)) if m.re is _NNUNET_IMAGE else m.group(1),
                    "image",
                    path,
                )
    return entries


def _labels_entries(root: Path) -> dict[str, dict]:
    """A plain folder of reference labels: ``<id>.nii[.gz]`` is case ``<id>``."""
    entries: dict[str, dict] = {}
    _label_files(root, entries, lambda stem: stem)
    return entries


def detect_layout(root: str | Path) -> str:
    """The layout found under `root` (``lits``, ``msd``, ``ircadb`` or ``labels``); InputError
    if none."""
    return _scan(Path(root))[0]


def _scan(root: Path) -> tuple[str, dict[str, dict]]:
    if not root.exists():
        problem, _ = file_problem(root)
        if os.path.lexists(root) and problem:
            raise ReadError(problem, path=root)
        raise InputError("path does not exist", path=root)
    if not root.is_dir():
        raise InputError("not a folder", path=root)
    children = [p for p in root.iterdir() if _visible(p)]
    if not children:
        raise InputError("empty folder", path=root)
    found: dict[str, dict[str, dict]] = {}
    if (
        root.name in LABEL_FOLDERS
        or (root / "imagesTr").is_dir()
        or (root / "labelsTr").is_dir()
        or (root / "dataset.json").is_file()
    ):
        found["msd"] = _msd_entries(root)
    lits = _lits_entries(root)
    if lits:
        found["lits"] = lits
    if _IRCADB.match(root.name) and (
        (root / "PATIENT_DICOM").exists() or (root / "PATIENT_DICOM.zip").exists()
    ):
        found["ircadb"] = {root.name: {"dir": root}}
    else:
        patients = {p.name: {"dir": p} for p in children if p.is_dir() and _IRCADB.match(p.name)}
        if patients:
            found["ircadb"] = patients
    if not found:
        labels = _labels_entries(root)
        if labels:
            found["labels"] = labels
    if not found:
        hint = ""
        if any(p.is_file() and _IRCADB.match(p.name.removesuffix(".zip")) for p in children):
            hint = " (unpack the outer 3Dircadb1.K.zip archives; the inner PATIENT_DICOM.zip and MASKS_DICOM.zip may stay zipped)"
        raise InputError(f"no LiTS, Task03 (MSD) or 3DIRCADb layout found{hint}", path=root)
    if len(found) > 1:
        raise InputError(
            f"ambiguous: several layouts found ({', '.join(sorted(found))})", path=root
        )
    layout, entries = next(iter(found.items()))
    if not entries:
        raise InputError(f"{layout} layout without any case files", path=root)
    return layout, entries


def open_dataset(root: str | Path) -> Dataset:
    """Detect the layout under `root` and return a lazy Dataset over its cases."""
    root = Path(root)
    try:
        layout, entries = _scan(root)
    except OSError as exc:  # an unreadable folder below the root, a loop, a vanished file
        where = exc.filename or root
        raise ReadError(f"cannot list the dataset ({os_error_text(exc)})", path=where) from None
    return Dataset(root, layout, entries)
