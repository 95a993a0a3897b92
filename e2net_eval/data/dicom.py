"""Read a 3DIRCADb patient (``3Dircadb1.K/{PATIENT_DICOM,MASKS_DICOM}``), unpacked or zipped.

Array axis convention for DICOM-derived cases (the same as NIfTI from DICOM converters):
``array[i, j, k]`` is column ``i``, row ``j`` of slice ``k``, slices sorted by increasing
position along the slice normal ``cross(row cosine, column cosine)``. So the array is
``(Columns, Rows, Slices)`` and ``spacing = (PixelSpacing[1], PixelSpacing[0], slice distance)``.
The affine maps (i, j, k) to RAS+ mm: the DICOM LPS geometry with x and y negated.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pydicom

from e2net_eval.data.spacing import check_spacing
from e2net_eval.errors import InputError, ReadError
from e2net_eval.util.reading import decoding, file_problem, readable_file

TUMOUR_FOLDER = re.compile(r"^livertumor(s)?\d*$", re.IGNORECASE)
LIVER_FOLDER = "liver"
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
GAP_TOLERANCE = 0.25  # a step this much larger (relative) than the median step is a gap


#: Compression methods Python's zipfile decodes: stored, deflate, bzip2, lzma.
ZIP_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
_ZIP_METHOD_NAMES = {9: "deflate64", 6: "implode", 93: "zstandard", 98: "ppmd", 99: "AES"}


class Source:
    """A folder of DICOM files, on disk or inside a zip: lists and reads members by name."""

    def __init__(self, label: str, files: dict[str, object], zf: zipfile.ZipFile | None = None):
        self.label, self.files, self.zf = label, files, zf

    def path(self, name: str) -> str:
        """How a member is named in messages: the file, or ``archive.zip:member``."""
        ref = self.files[name]
        if self.zf is not None:
            return f"{self.zf.filename}:{ref.filename}"
        return str(ref)

    def read(self, name: str, *, header_only: bool, case: str | None = None) -> pydicom.Dataset:
        """One DICOM file (or zip member); a ReadError names it and the cause on failure."""
        ref = self.files[name]
        where = self.path(name)
        if self.zf is None:
            readable_file(ref, case, "DICOM file")
        with decoding(where, case, "zip member" if self.zf is not None else "DICOM file"):
            fh = io.BytesIO(self.zf.read(ref)) if self.zf is not None else ref
        with decoding(where, case, "DICOM file"):
            return pydicom.dcmread(fh, stop_before_pixels=header_only, force=True)


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _is_dicom_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return bool(base) and not base.startswith(".") and base.lower() not in {"dicomdir"}


def open_folder(patient: Path, name: str, case: str) -> dict[str, Source]:
    """Sub-folders of ``patient/name`` (or ``name.zip``) that hold files: {sub-path: Source}.

    For PATIENT_DICOM the files sit directly inside, keyed ``""``; for MASKS_DICOM one key
    per structure folder (``liver``, ``livertumor01``, ...).
    """
    folder, archive = patient / name, patient / f"{name}.zip"
    groups: dict[str, dict[str, object]] = {}
    if os.path.lexists(folder) and not folder.is_dir():
        problem, _ = file_problem(folder)
        raise ReadError(f"expected a folder: {problem or 'a file'}", case=case, path=folder)
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if not _is_dicom_name(path.name) or path.is_dir():
                continue
            # anything else under the name (broken link, loop, unreadable) is named when read
            rel = path.relative_to(folder).parent.as_posix()
            groups.setdefault("" if rel == "." else rel, {})[path.name] = path
        if not groups:
            raise InputError("empty folder", case=case, path=folder)
        return {k: Source(f"{folder}/{k}".rstrip("/"), v) for k, v in groups.items()}
    if os.path.lexists(archive):
        readable_file(archive, case, "zip archive")
        with decoding(archive, case, "zip archive"):
            zf = zipfile.ZipFile(archive)
            members = [m for m in zf.infolist() if not m.is_dir() and _is_dicom_name(m.filename)]
        _refuse_duplicates(archive, members, case)
        for m in members:
            parts = PurePosixPath(m.filename).parts
            if name not in parts or "__MACOSX" in parts:
                continue
            _check_member(zf, m, case)
            rel = "/".join(parts[parts.index(name) + 1 : -1])
            groups.setdefault(rel, {})[parts[-1]] = m
        if not groups:
            raise InputError(f"zip has no {name}/ folder with files", case=case, path=archive)
        return {k: Source(f"{archive}:{name}/{k}".rstrip("/"), v, zf) for k, v in groups.items()}
    raise InputError(f"missing {name} (folder or .zip)", case=case, path=folder)


def _refuse_duplicates(archive: Path, members: list[zipfile.ZipInfo], case: str) -> None:
    """A name held twice in one archive is ambiguous (readers disagree on which copy wins):
    refuse it rather than pick one."""
    seen: set[str] = set()
    for m in members:
        if m.filename in seen:
            raise ReadError(
                "zip archive holds two members of this name (ambiguous: which one is meant?)",
                case=case,
                path=f"{archive}:{m.filename}",
            )
        seen.add(m.filename)


def _check_member(zf: zipfile.ZipFile, member: zipfile.ZipInfo, case: str) -> None:
    """Refuse, before reading, a member Python cannot decode (method or encryption)."""
    where = f"{zf.filename}:{member.filename}"
    if member.flag_bits & 0x1:
        raise ReadError("zip member is encrypted (unpack it first)", case=case, path=where)
    if member.compress_type not in ZIP_METHODS:
        method = _ZIP_METHOD_NAMES.get(member.compress_type, "unknown")
        raise ReadError(
            f"zip member uses compression method {member.compress_type} ({method}), which "
            f"cannot be read here (supported: {', '.join(ZIP_METHODS.values())}); "
            "re-zip it with deflate or unpack it",
            case=case,
            path=where,
        )


@dataclass
class Geometry:
    """Sorted slice order and the geometry read from the headers."""

    order: list[str]
    shape: tuple[int, int, int]  # (Columns, Rows, Slices)
    affine: np.ndarray
    spacing: tuple[float, float, float]
    positions: np.ndarray  # (Slices,) position along the normal, mm
    has_positions: bool = True  # False: ordered by InstanceNumber


def _describe(value) -> str:
    return "[" + ", ".join(f"{float(v):.6g}" for v in value) + "]"


def _check_series(src: Source, heads: dict[str, pydicom.Dataset], case: str) -> None:
    """One folder, one series: same SeriesInstanceUID, orientation and pixel spacing.

    Two interleaved series (another SeriesInstanceUID) would otherwise be stacked into one
    volume at half the slice distance; a slice with another orientation or pixel size would
    be pasted in as if it had the first slice's.
    """
    uids: dict[str, list[str]] = {}
    for name, h in heads.items():
        uids.setdefault(str(getattr(h, "SeriesInstanceUID", "") or "(none)"), []).append(name)
    if len(uids) > 1:
        parts = [
            f"{uid} ({len(names)} slice(s), e.g. {sorted(names, key=_natural_key)[0]})"
            for uid, names in sorted(uids.items(), key=lambda kv: -len(kv[1]))
        ]
        raise InputError(
            f"{len(uids)} series in one folder (SeriesInstanceUID {'; '.join(parts)}); "
            "keep one series per folder",
            case=case,
            path=src.label,
        )
    names = sorted(heads, key=_natural_key)
    ref_name = names[0]
    for tag, default, tol in (
        ("ImageOrientationPatient", (1, 0, 0, 0, 1, 0), 1e-4),
        ("PixelSpacing", (1.0, 1.0), 1e-4),
    ):
        ref = np.asarray(getattr(heads[ref_name], tag, default), dtype=float)
        for name in names[1:]:
            val = np.asarray(getattr(heads[name], tag, default), dtype=float)
            if val.shape != ref.shape or not np.allclose(val, ref, rtol=0, atol=tol):
                raise InputError(
                    f"{tag} {_describe(val)} differs from {ref_name}'s {_describe(ref)}: "
                    "slices of one volume must share orientation and pixel size",
                    case=case,
                    path=src.path(name),
                )


def read_geometry(src: Source, case: str) -> Geometry:
    """Read every header of a series, check it is one series, order the slices and check it
    is one gap-free stack."""
    if not src.files:
        raise InputError("empty folder", case=case, path=src.label)
    heads = {name: src.read(name, header_only=True, case=case) for name in src.files}
    sizes: dict[tuple[int, int], list[str]] = {}
    for name, h in heads.items():  # a stray file (notes, a thumbnail) is named, not guessed at
        with decoding(src.path(name), case, "DICOM file"):
            size = (int(getattr(h, "Rows", 0) or 0), int(getattr(h, "Columns", 0) or 0))
        if min(size) <= 0:
            raise ReadError(
                "not a DICOM image slice (no Rows/Columns); move it out of the series folder",
                case=case,
                path=src.path(name),
            )
        sizes.setdefault(size, []).append(name)
    if len(sizes) != 1:
        common = max(sizes, key=lambda k: len(sizes[k]))
        odd = min((n for k, v in sizes.items() if k != common for n in v), key=_natural_key)
        r, c = next(k for k, v in sizes.items() if odd in v)
        raise InputError(
            f"mixed slice sizes: this slice is {r}x{c}, most are {common[0]}x{common[1]}",
            case=case,
            path=src.path(odd),
        )
    with decoding(src.label, case, "DICOM series"):
        _check_series(src, heads, case)
        return _stack(src, heads, next(iter(sizes)), case)


def _sizes(head, tags: tuple[str, ...], what: str, case: str, path: str):
    """The value of the first of `tags` the header has; none: an `InputError` (a size in mm
    is never assumed to be 1)."""
    for tag in tags:
        value = getattr(head, tag, None)
        if value is not None and value != "":
            return value
    raise InputError(
        f"no {' or '.join(tags)}: the {what} is unknown (not assumed to be 1 mm)",
        case=case,
        path=path,
    )


def _stack(src: Source, heads: dict, size: tuple[int, int], case: str) -> Geometry:
    """Order one checked series along its normal and derive the affine and spacing."""
    rows, cols = size
    first_name = sorted(heads, key=_natural_key)[0]
    first = heads[first_name]
    row_cos, col_cos, ps = _in_plane(first, src.path(first_name), case)
    normal = np.cross(row_cos, col_cos)
    n = len(heads)
    placed = [k for k, h in heads.items() if hasattr(h, "ImagePositionPatient")]
    if placed and len(placed) < n:  # a damaged slice, not a series without positions
        lost = min((k for k in heads if k not in placed), key=_natural_key)
        raise InputError(
            "no ImagePositionPatient, while other slices of the series have one",
            case=case,
            path=src.path(lost),
        )
    if placed:
        pos = {
            k: _numbers(h, "ImagePositionPatient", 3, src.path(k), case) for k, h in heads.items()
        }
        along = {k: float(p @ normal) for k, p in pos.items()}
        order = sorted(heads, key=lambda k: along[k])
        positions = np.array([along[k] for k in order])
        origin = pos[order[0]]
    else:  # fall back to InstanceNumber, spacing from SliceThickness
        try:
            order = sorted(heads, key=lambda k: int(heads[k].InstanceNumber))
        except (AttributeError, TypeError, ValueError):
            raise InputError(
                "slices have neither ImagePositionPatient nor InstanceNumber",
                case=case,
                path=src.label,
            ) from None
        numbers = np.array([int(heads[k].InstanceNumber) for k in order])
        if n > 1 and np.any(np.diff(numbers) != 1):
            raise InputError("missing slice (InstanceNumber gap)", case=case, path=src.label)
        tags = ("SpacingBetweenSlices", "SliceThickness")
        step = float(_sizes(first, tags, "slice distance", case, src.label))
        positions = np.arange(n) * step
        origin = np.zeros(3)
    dz = _slice_distance(positions, first, case, src.label)
    where = dict(source="PixelSpacing and slice distance", case=case, path=src.label)
    spacing = check_spacing((ps[1], ps[0], dz), **where)
    lps = np.eye(4)
    lps[:3, 0] = row_cos * ps[1]
    lps[:3, 1] = col_cos * ps[0]
    lps[:3, 2] = normal * dz
    lps[:3, 3] = origin
    has_pos = all(hasattr(h, "ImagePositionPatient") for h in heads.values())
    check_spacing(spacing, affine=lps, **where)  # orientation cosines of length 1, finite
    return Geometry(order, (cols, rows, n), LPS_TO_RAS @ lps, spacing, positions, has_pos)


def _slice_distance(positions: np.ndarray, first, case: str, label: str) -> float:
    """The mean distance between consecutive slice positions, refusing duplicated or missing
    slices; one slice: its SliceThickness."""
    n = len(positions)
    if n > 1:
        steps = np.diff(positions)
        med = float(np.median(steps))
        if med <= 1e-6 or np.any(steps < med * (1 - GAP_TOLERANCE)):
            raise InputError("duplicate slice positions", case=case, path=label)
        if np.any(steps > med * (1 + GAP_TOLERANCE)):
            k = int(np.argmax(steps))
            raise InputError(
                f"missing slice: gap of {steps[k]:.3g} mm after slice {k} (usual {med:.3g} mm)",
                case=case,
                path=label,
            )
        return float((positions[-1] - positions[0]) / (n - 1))
    return float(_sizes(first, ("SliceThickness",), "slice distance", case, label))


def _numbers(ds: pydicom.Dataset, tag: str, count: int, path: str, case: str) -> np.ndarray:
    """A multi-valued numeric tag as `count` finite floats, or an InputError naming the slice."""
    try:
        values = np.asarray([float(v) for v in np.atleast_1d(getattr(ds, tag))], dtype=float)
    except (TypeError, ValueError, OverflowError):
        values = np.array([])
    if values.shape != (count,) or not np.isfinite(values).all():
        raise InputError(
            f"{tag} {_shown(getattr(ds, tag, None))} is not {count} finite number(s)",
            case=case,
            path=path,
        )
    return values


def _shown(value) -> str:
    """A tag's value as written, short (any type: a number, text, several values)."""
    items = value if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    text = ", ".join(str(v) for v in items)
    return "[" + (text if len(text) <= 80 else text[:77] + "...") + "]"


def _in_plane(ds: pydicom.Dataset, path: str, case: str):
    """(row direction, column direction, PixelSpacing) of a slice, checked: unit, orthogonal
    direction cosines and a finite, positive pixel size (defaults when a tag is absent)."""
    iop = np.array([1.0, 0, 0, 0, 1, 0])
    if hasattr(ds, "ImageOrientationPatient"):
        iop = _numbers(ds, "ImageOrientationPatient", 6, path, case)
    row_cos, col_cos = iop[:3], iop[3:]
    norms = np.linalg.norm(row_cos), np.linalg.norm(col_cos)
    if max(abs(norms[0] - 1), abs(norms[1] - 1), abs(row_cos @ col_cos)) > 1e-3:
        raise InputError(
            f"ImageOrientationPatient {_shown(list(iop))} is not two orthogonal unit vectors",
            case=case,
            path=path,
        )
    _sizes(ds, ("PixelSpacing",), "pixel size", case, path)  # absent: never assumed 1 mm
    ps = [float(v) for v in _numbers(ds, "PixelSpacing", 2, path, case)]
    if min(ps) <= 0:
        raise InputError(f"PixelSpacing {_describe(ps)} is not positive", case=case, path=path)
    return row_cos, col_cos, ps


def _rescale(ds: pydicom.Dataset, path: str, case: str) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept) of a slice: finite numbers (defaults 1 and 0)."""
    out = []
    for tag, default in (("RescaleSlope", 1.0), ("RescaleIntercept", 0.0)):
        value = getattr(ds, tag, None)
        if value is None or value == "":
            out.append(default)
            continue
        out.append(float(_numbers(ds, tag, 1, path, case)[0]))
    slope, inter = out
    return (slope or 1.0), inter


def read_pixels(src: Source, geom: Geometry, case: str, *, mask: bool) -> np.ndarray:
    """The series as one (Columns, Rows, Slices) array: HU (int16|float32) or a bool mask."""
    cols, rows, n = geom.shape
    out = None
    for k, name in enumerate(geom.order):
        path = src.path(name)
        ds = src.read(name, header_only=False, case=case)
        with decoding(path, case, "DICOM pixel data"):
            px = ds.pixel_array
        if px.shape != (rows, cols):
            raise InputError(f"slice size {px.shape} != {(rows, cols)}", case=case, path=path)
        if mask:
            if out is None:
                out = np.zeros((cols, rows, n), dtype=bool, order="F")
            out[:, :, k] = px.T > 0
            continue
        slope, inter = _rescale(ds, path, case)
        if out is None:
            integral = slope == 1.0 and inter.is_integer() and px.dtype.kind in "iu"
            out = np.empty((cols, rows, n), dtype=np.int16 if integral else np.float32, order="F")
        if out.dtype == np.int16:
            if slope != 1.0 or not inter.is_integer() or px.dtype.kind not in "iu":
                out = out.astype(np.float32)  # a later slice needs real-valued HU
            else:
                vals = px.astype(np.int32) + int(inter)
                if vals.min() < -32768 or vals.max() > 32767:
                    out = out.astype(np.float32)
                else:
                    out[:, :, k] = vals.T
                    continue
        out[:, :, k] = (px.astype(np.float32) * np.float32(slope) + np.float32(inter)).T
    if not mask and out.dtype == np.float32 and not np.isfinite(out).all():
        raise InputError("image contains NaN or infinity (HU)", case=case, path=src.label)
    return out


def read_patient(patient: Path, case: str, *, image: bool = True, label: bool = True) -> dict:
    """Read one 3DIRCADb patient: image (HU), label (uint8 0/1/2), affine, spacing, folders."""
    series = open_folder(patient, "PATIENT_DICOM", case)
    if len(series) != 1:
        src = series.get("")
        if src is None:
            raise InputError(f"several series {sorted(series)}", case=case, path=patient)
    else:
        src = next(iter(series.values()))
    geom = read_geometry(src, case)
    result = {
        "affine": geom.affine,
        "spacing": geom.spacing,
        "shape": geom.shape,
        "image_path": patient / "PATIENT_DICOM",
        "image": None,
        "label": None,
        "tumour_folders": [],
        "other_folders": [],
    }
    if image:
        result["image"] = read_pixels(src, geom, case, mask=False)
    if not label:
        return result
    masks = open_folder(patient, "MASKS_DICOM", case)
    result["label_path"] = patient / "MASKS_DICOM"
    names = {k.lower(): k for k in masks}
    if LIVER_FOLDER not in names:
        raise InputError("no MASKS_DICOM/liver folder", case=case, path=patient / "MASKS_DICOM")
    tumour_keys = sorted((k for k in masks if TUMOUR_FOLDER.match(k)), key=_natural_key)
    result["tumour_folders"] = tumour_keys
    result["other_folders"] = sorted(
        (k for k in masks if k not in tumour_keys and k.lower() != LIVER_FOLDER), key=_natural_key
    )
    lab = _mask(masks[names[LIVER_FOLDER]], geom, src.label, case).view(np.uint8)
    for key in tumour_keys:
        lab[_mask(masks[key], geom, src.label, case)] = 2
    result["label"] = lab
    return result


def _mask(src: Source, geom: Geometry, image: str, case: str) -> np.ndarray:
    """A mask series on the image grid (checked: same size, count and slice positions);
    `image` names the image series in a mismatch (either of the two may be the faulty one).

    Mask slices without ImagePositionPatient are matched to image slices by file name
    (``image_k`` in both folders, as 3DIRCADb names them).
    """
    mgeom = read_geometry(src, case)
    if mgeom.shape != geom.shape:
        raise InputError(
            f"mask shape {mgeom.shape} != image shape {geom.shape} (of {image})",
            case=case,
            path=src.label,
        )
    if not np.allclose(mgeom.affine[:3, :2], geom.affine[:3, :2], rtol=0, atol=1e-3):
        raise InputError(
            f"mask orientation or pixel spacing differs from the image's ({image})",
            case=case,
            path=src.label,
        )
    if mgeom.has_positions and geom.has_positions:
        tol = 1e-3 + 0.01 * abs(geom.spacing[2])
        if not np.allclose(mgeom.positions, geom.positions, atol=tol):
            raise InputError(
                f"mask slice positions differ from the image's ({image})",
                case=case,
                path=src.label,
            )
    elif set(src.files) == set(geom.order):
        mgeom.order = list(geom.order)
    return read_pixels(src, mgeom, case, mask=True)
