"""3DIRCADb mutants: one phantom patient (`e2net_eval.data.write_phantom`, layout ircadb) as
DICOM folders or as ``PATIENT_DICOM.zip`` / ``MASKS_DICOM.zip``, mutated at the zip level
(central directory, local headers, member bytes, truncation, dropped or duplicated
members, re-zipping) or the DICOM level (tags of one slice or a whole series, bytes,
truncation, a removed slice, a stray file).

The independent reading of a zip is the standard library's `zipfile`: every member read
and its CRC checked. An archive it cannot read, or one naming a member twice (which of the
two is meant?), must be refused; otherwise the archive means its members, so a run on the
mutant must equal the run on the same members zipped cleanly. A DICOM mutant declares the
facts it may legitimately change (``image``: HU values; ``label``: the mask; ``all``:
anything, for byte flips in headers, where only the robustness promises are judged); every
other fact must equal the clean run's.
"""

from __future__ import annotations

import io
import math
import random
import re
import struct
import warnings
import zipfile
from pathlib import Path

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from tests.fuzz.fuzz_core import AS, REFUSE, SAME, Mutant

CASE = "3Dircadb1.1"
IMAGE, LABEL, ALL = "image", "label", "all"


def base_tree(work: Path, zipped: bool) -> dict[str, bytes]:
    """{relative path: bytes} of one phantom patient under ``ircadb/``."""
    from e2net_eval.data import write_phantom
    from e2net_eval.data.phantom import PhantomSpec

    root = work / ("clean_zip" if zipped else "clean_dir")
    if not root.exists():
        write_phantom(root, PhantomSpec("ircadb", 1, seed=4, size=16, slices=(5, 6), zipped=zipped))
    return {
        "ircadb/" + p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


# ---------------------------------------------------------------- zip level


#: Members a 3DIRCADb reader needs: the CT slices, the liver and the tumour masks (other
#: structures, e.g. ``leftsurretumor``, are not read, so a damaged one may be ignored).
USED = re.compile(r"^(PATIENT_DICOM/[^/]+|MASKS_DICOM/(liver|livertumou?rs?\d*)/[^/]+)$")


def zip_members(data: bytes, lenient: bool = False) -> list[tuple[str, bytes]] | None:
    """Every member (name, bytes) as `zipfile` reads it with CRC checks; None if it cannot,
    or if a name occurs twice. `lenient`: a member that is not `USED` and cannot be read is
    left out instead."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = [i.filename for i in zf.infolist()]
            if len(set(names)) != len(names):
                return None
            out = []
            for info in zf.infolist():
                try:
                    out.append((info.filename, zf.read(info)))
                except Exception:  # noqa: BLE001
                    if not lenient or USED.match(info.filename):
                        return None
                    out.append((info.filename, b""))  # listed by name, never read
            return out
    except Exception:  # noqa: BLE001 - the reference reader could not read it
        return None


def rezip(members, method=zipfile.ZIP_DEFLATED, comment: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        zf.comment = comment
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data, compress_type=method)
    return buf.getvalue()


def _cd_range(data: bytes) -> tuple[int, int]:
    eocd = data.rfind(b"PK\x05\x06")
    size, offset = struct.unpack_from("<II", data, eocd + 12)
    return offset, offset + size


def _flip(rng, data: bytearray, lo: int, hi: int) -> int:
    pos = rng.randrange(lo, max(lo + 1, hi))
    data[pos] ^= 1 << rng.randrange(8) if rng.random() < 0.6 else rng.randrange(1, 256)
    return pos


def zip_flip_cd(rng, data: bytearray) -> str:
    lo, hi = _cd_range(bytes(data))
    return f"central directory byte {_flip(rng, data, lo, len(data) if rng.random() < 0.2 else hi)}"


def zip_flip_local(rng, data: bytearray) -> str:
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = rng.choice(zf.infolist())
    start = info.header_offset
    return f"local header byte {_flip(rng, data, start, start + 30 + len(info.filename))}"


def zip_flip_data(rng, data: bytearray) -> str:
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = rng.choice([i for i in zf.infolist() if i.compress_size])
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    return f"member data byte {_flip(rng, data, start, start + info.compress_size)}"


def zip_truncate(rng, data: bytearray) -> str:
    n = rng.choice([0, 4, 22, len(data) - 1, len(data) - 22, rng.randrange(len(data))])
    del data[n:]
    return f"cut to {n}"


def zip_drop(rng, data: bytearray) -> str:
    members = zip_members(bytes(data))
    gone = rng.randrange(len(members))
    name = members.pop(gone)[0]
    data[:] = rezip(members)
    return f"member {name} removed"


def zip_duplicate(rng, data: bytearray) -> str:
    members = zip_members(bytes(data))
    name, blob = rng.choice([m for m in members if not m[0].endswith("/")])
    members.append((name, blob[:-2] + b"\0\0"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        data[:] = rezip(members)
    return f"member {name} twice"


def zip_rezip(rng, data: bytearray) -> str:
    """The same members, another order, method and comment: the same data (must read)."""
    members = zip_members(bytes(data))
    rng.shuffle(members)
    method = rng.choice(
        [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
    )
    data[:] = rezip(members, method, comment=rng.randbytes(rng.choice([0, 10, 200])))
    return f"rezipped, method {method}, shuffled"


def zip_prefix(rng, data: bytearray) -> str:
    data[:0] = rng.randbytes(rng.choice([1, 100, 4096]))
    return "bytes before the archive"


#: kind -> (mutation, must_read)
ZIP_KINDS = {
    "zip_flip_cd": (zip_flip_cd, False),
    "zip_flip_local": (zip_flip_local, False),
    "zip_flip_data": (zip_flip_data, False),
    "zip_truncate": (zip_truncate, False),
    "zip_drop_member": (zip_drop, False),
    "zip_dup_member": (zip_duplicate, False),
    "zip_rezip": (zip_rezip, True),
    "zip_prefix": (zip_prefix, False),
}

# ---------------------------------------------------------------- DICOM level

NEUTRAL_TAGS = ("PatientName", "StudyDescription", "InstitutionName", "Manufacturer", "PatientID")
ODD_VALUES = (
    b"nan\\nan", b"inf\\1", b"0\\0", b"-1\\-1", b"1e309\\1", b"", b"abc", b"1\\2\\3\\4\\5\\6\\7",
    b"-0", b"1e-300\\1e-300", b"1.2.3", b"\xff\xfe", b"0\\0\\0\\0\\0\\0",
)  # fmt: skip
GEOMETRY_TAGS = (
    "PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient", "SliceThickness",
    "SeriesInstanceUID", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
    "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation", "NumberOfFrames",
)  # fmt: skip
SCALE_TAGS = ("RescaleSlope", "RescaleIntercept")


def _set(ds: pydicom.Dataset, keyword: str, value: bytes | None) -> None:
    """Store `value` as the raw bytes of a tag (None deletes it): any bytes, valid or not."""
    tag = Tag(tag_for_keyword(keyword))
    if value is None:
        ds._dict.pop(tag, None)  # noqa: SLF001 - raw access is the point
        return
    if len(value) % 2:
        value += b" "
    ds._dict[tag] = RawDataElement(tag, dictionary_VR(tag), len(value), value, 0, False, True)  # noqa: SLF001


def _odd(rng, keyword: str) -> bytes | None:
    """A value no reader can use as it stands (or None: the tag is removed)."""
    if dictionary_VR(tag_for_keyword(keyword)) in ("US", "SS"):
        n = rng.choice([0, 1, 2, 7, 8, 15, 16, 32, 255, 65535])
        return rng.choice([n.to_bytes(2, "little"), b"\x01", b"", None])
    return rng.choice([*ODD_VALUES, None])


def _encode(ds: pydicom.Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    return buf.getvalue()


def dcm_neutral(rng, ds: pydicom.Dataset) -> tuple[str, frozenset, bool]:
    tag = rng.choice(NEUTRAL_TAGS)
    value = rng.choice(["x" * 60, "Müller^Hans", "", "=cmd|' /C calc'!A0", "<script>"])
    ds[tag] = pydicom.DataElement(tag, pydicom.datadict.dictionary_VR(tag), value)
    if rng.random() < 0.3:
        ds.add_new(0x00091010, "LO", "private " + "y" * rng.randrange(50))
    return f"{tag}={value!r}", frozenset(), True


def dcm_tag(rng, ds: pydicom.Dataset) -> tuple[str, frozenset, bool]:
    tag = rng.choice(GEOMETRY_TAGS + SCALE_TAGS)
    value = _odd(rng, tag)
    _set(ds, tag, value)
    changes = _scale_changes(tag, value)
    return f"{tag}={value!r}", changes, False


#: kind -> mutation of one decoded slice (detail, facts it may change, must_read);
#: ``dcm_tag_series`` applies the same change to every slice of the series
TAG_KINDS = {"dcm_neutral": dcm_neutral, "dcm_tag": dcm_tag, "dcm_tag_series": dcm_tag}
#: ``dcm_tag_all``: the same change in every slice of every series (consistently wrong, so
#: no cross-check between slices or series can catch it: only the value's own validity)
SERIES_KINDS = ("dcm_tag_series", "dcm_tag_all")


def _pixel_start(blob: bytes) -> int:
    pos = blob.rfind(b"\xe0\x7f\x10\x00")
    return pos + 12 if pos >= 0 else len(blob)


def mutate_dicom(
    rng, rel: str, blob: bytes, kind: str
) -> tuple[bytes | None, str, frozenset, bool]:
    """(new bytes or None for removed, detail, changes, must_read) for one slice file."""
    is_mask = "MASKS_DICOM" in rel
    if kind in TAG_KINDS:
        ds = pydicom.dcmread(io.BytesIO(blob), force=True)
        detail, changes, must_read = TAG_KINDS[kind](rng, ds)
        changes |= _pixel_changes(detail.split("=")[0], not is_mask, is_mask)
        return _encode(ds), detail, changes, must_read
    data = bytearray(blob)
    if kind == "dcm_flip_pixels":
        pos = _flip(rng, data, _pixel_start(blob), len(data))
        return bytes(data), f"pixel byte {pos}", frozenset({LABEL if is_mask else IMAGE}), False
    if kind == "dcm_flip_header":
        pos = _flip(rng, data, 0, _pixel_start(blob))
        return bytes(data), f"header byte {pos}", frozenset({ALL}), False
    if kind == "dcm_truncate":
        n = rng.randrange(len(data))
        return bytes(data[:n]), f"cut to {n}", frozenset(), False
    if kind == "dcm_remove":
        return None, "slice removed", frozenset({LABEL} if is_mask else ()), False
    raise ValueError(kind)


DCM_KINDS = (
    *TAG_KINDS,
    "dcm_tag_all",
    "dcm_flip_pixels",
    "dcm_flip_header",
    "dcm_truncate",
    "dcm_remove",
)
STRAY_NAMES = ("notes.txt", "Thumbs.db", ".DS_Store", "DICOMDIR", "image_x", "README")


def make_mutant(rng: random.Random, tree: dict[str, bytes], zipped: bool) -> tuple[Mutant, dict]:
    """(mutant, the mutated tree) of a clean patient `tree`."""
    kinds = list(DCM_KINDS) + ["dcm_stray"] + (list(ZIP_KINDS) * 2 if zipped else [])
    kind = rng.choice(kinds)
    tree = dict(tree)
    archives = sorted(k for k in tree if k.endswith(".zip"))
    if kind in ZIP_KINDS:
        target = rng.choice(archives)
        data = bytearray(tree[target])
        func, must_read = ZIP_KINDS[kind]
        detail = func(rng, data)
        tree[target] = bytes(data)
        m = Mutant("ircadb", kind, detail, target, bytes(data), must_read=must_read)
        return _zip_expectation(m, tree), tree
    if kind == "dcm_stray":
        return _stray(rng, tree, zipped)
    if kind in SERIES_KINDS:
        return _series_mutant(rng, tree, zipped, every=kind == "dcm_tag_all")
    if zipped:  # mutate a member, then zip the archive again cleanly
        target = rng.choice(archives)
        members = zip_members(tree[target])
        names = [n for n, _ in members if n.rsplit("/", 1)[-1].startswith("image_")]
        name = rng.choice(names)
        blob = dict(members)[name]
        new, detail, changes, must_read = mutate_dicom(rng, name, blob, kind)
        members = [
            (n, new if n == name else b) for n, b in members if not (n == name and new is None)
        ]
        tree[target] = rezip(members)
        detail = f"{name}: {detail}"
    else:
        target = rng.choice([k for k in tree if k.rsplit("/", 1)[-1].startswith("image_")])
        new, detail, changes, must_read = mutate_dicom(rng, target, tree[target], kind)
        tree[target] = new
    m = Mutant("ircadb", kind, detail, target, tree[target], must_read=must_read, changes=changes)
    # A truncated slice cannot mean what the whole one did: refused, or (a file the
    # command does not read, e.g. CT pixels for evaluate) without effect.
    m.expect = SAME
    return m, tree


#: tags that say how to read the stored pixel values: any value a reader accepts may
#: legitimately change them (BitsStored 8 of 16 masks the high bits, as DICOM says)
PIXEL_TAGS = ("BitsStored", "HighBit", "PixelRepresentation")


def _pixel_changes(tag: str, image: bool, mask: bool) -> frozenset:
    if tag not in PIXEL_TAGS:
        return frozenset()
    return frozenset({IMAGE} if image else ()) | frozenset({LABEL} if mask else ())


def _scale_changes(tag: str, value: bytes | None) -> frozenset:
    """A rescale tag set to (or removed for) a usable number legitimately changes HU; one
    that is not a finite number must be refused (or ignored: the clean HU)."""
    if tag not in SCALE_TAGS:
        return frozenset()
    try:
        usable = value is None or math.isfinite(float(value.decode("latin-1").strip() or "x"))
    except ValueError:
        usable = False
    return frozenset({IMAGE}) if usable else frozenset()


def _series_mutant(rng, tree: dict, zipped: bool, every: bool) -> tuple[Mutant, dict]:
    """One tag set to one odd value in every slice of one series, or of every series."""
    tag = rng.choice(GEOMETRY_TAGS + SCALE_TAGS)
    value = _odd(rng, tag)
    if every and tag == "ImagePositionPatient" and value is None:
        value = b"0\\0\\0"  # none anywhere is the documented InstanceNumber fallback

    def change(blob: bytes) -> bytes:
        ds = pydicom.dcmread(io.BytesIO(blob), force=True)
        _set(ds, tag, value)
        return _encode(ds)

    if zipped:
        target = rng.choice(sorted(k for k in tree if k.endswith(".zip")))
        members = zip_members(tree[target])
        folders = sorted({n.rsplit("/", 1)[0] for n, _ in members if "/image_" in n})
        folder = rng.choice(folders)
        for arch in sorted(k for k in tree if k.endswith(".zip")) if every else [target]:
            tree[arch] = rezip(
                [
                    (n, change(b) if every or n.rsplit("/", 1)[0] == folder else b)
                    for n, b in zip_members(tree[arch])
                ]
            )
        where = f"{target}:{folder}"
    else:
        slices = [k for k in tree if k.rsplit("/", 1)[-1].startswith("image_")]
        folder = rng.choice(sorted({k.rsplit("/", 1)[0] for k in slices}))
        for k in slices:
            if every or k.rsplit("/", 1)[0] == folder:
                tree[k] = change(tree[k])
        target = where = folder + "/image_0"
    if every:  # any series may be the one named
        target = f"ircadb/{CASE}/PATIENT_DICOM" + (".zip" if zipped else "/image_0")
    image = "PATIENT_DICOM" in where or every
    changes = _scale_changes(tag, value) if image else frozenset()
    changes |= _pixel_changes(tag, image, every or "MASKS_DICOM" in where)
    kind = "dcm_tag_all" if every else "dcm_tag_series"
    scope = "every series" if every else "every slice"
    m = Mutant("ircadb", kind, f"{where}: {tag}={value!r} in {scope}", target,
               tree.get(target), changes=changes)  # fmt: skip
    return m, tree


def _stray(rng, tree: dict, zipped: bool) -> tuple[Mutant, dict]:
    name = rng.choice(STRAY_NAMES)
    blob = rng.choice([b"hello", b"", rng.randbytes(300)])
    if zipped:
        target = "ircadb/" + CASE + "/PATIENT_DICOM.zip"
        members = zip_members(tree[target]) + [(f"PATIENT_DICOM/{name}", blob)]
        tree[target] = rezip(members)
        target_name = f"{target}:PATIENT_DICOM/{name}"
    else:
        target = target_name = f"ircadb/{CASE}/PATIENT_DICOM/{name}"
        tree[target] = blob
    m = Mutant(
        "ircadb", "dcm_stray", f"stray {name} ({len(blob)} bytes)", target_name, tree.get(target)
    )
    m.expect = SAME
    return m, tree


def _zip_expectation(m: Mutant, tree: dict) -> Mutant:
    members = zip_members(m.data, lenient=True)
    if members is None:
        m.expect = REFUSE
        return m
    m.expect, m.canonical = AS, {m.target: rezip(members)}
    return m
