"""NIfTI mutants and their independent reading (the oracle's "read cleanly").

The base volumes are small and fixed: a label with a liver and three lesions, a prediction
that differs from it (shifted liver, a missed and a false lesion: every distance metric is
non-zero, so a wrong spacing changes the numbers), and a CT image; anisotropic spacing
0.8 x 0.75 x 2.5 mm under a flipped axis. Each mutant is one file in one *role*:

- ``ref``: the reference in a folder of labels only (``evaluate``, ``datasets check``);
- ``pred``: the prediction (``evaluate``);
- ``image`` / ``seg``: the CT / label of a LiTS-layout case (``datasets check``, ``convert``).

`reference_read` decodes a mutated file with the standard library's gzip (CRC and length
checked) and nibabel on the bytes, and applies the rules a reader must enforce: a 3-D
numeric volume, labels 0/1/2, no NaN in an image, a finite affine, and a spacing (pixdim)
that is finite, positive and agrees with the affine's column norms within
`AFFINE_ATOL` (issue 19, W1). Anything else must be refused. What it decodes is written
back as a canonical NIfTI, whose clean run gives the values a mutated run must equal.
"""

from __future__ import annotations

import gzip
import logging
import random
import struct
import warnings

import nibabel as nib
import numpy as np

from e2net_eval.data.spacing import AFFINE_ATOL
from tests.fuzz.fuzz_core import AS, REFUSE, SAME, Mutant

CASE = "7"
SHAPE = (20, 18, 7)
AFFINE = np.array(
    [[-0.8, 0.0, 0.0, 12.0], [0.0, 0.75, 0.0, -20.5], [0.0, 0.0, 2.5, 31.25], [0, 0, 0, 1]]
)
ROLES = ("ref", "pred", "image", "seg")
ENCODINGS = ("nii", "nii.gz")


def _ball(center, radii) -> np.ndarray:
    grid = np.indices(SHAPE).astype(float)
    d = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, center, radii, strict=True))
    return d <= 1.0


def base_volumes() -> dict[str, np.ndarray]:
    """{"label", "pred", "image"}: the fixed clean volumes."""
    liver = _ball((10, 9, 3), (7, 6, 3))
    label = liver.astype(np.uint8)
    for c in ((7, 7, 3), (12, 11, 2), (13, 6, 4)):
        label[_ball(c, (1.6, 1.6, 1.2)) & liver] = 2
    pred = np.roll(liver, 1, axis=0).astype(np.uint8)
    for c in ((7, 8, 3), (12, 11, 2), (9, 12, 4)):  # one lesion moved, one missed, one false
        pred[_ball(c, (1.6, 1.4, 1.2)) & (pred > 0)] = 2
    rng = np.random.default_rng(11)
    image = (rng.normal(40, 20, SHAPE) + 60 * (label > 0) + 30 * (label == 2)).astype(np.int16)
    image[~_ball((10, 9, 3), (9.5, 8.5, 3.5))] = -1024
    return {"label": label, "pred": pred, "image": image}


def encode(array: np.ndarray, affine: np.ndarray, zooms=None, gz: bool = False) -> bytes:
    """A clean NIfTI-1 file (sform and qform code 1), plain or gzipped."""
    img = nib.Nifti1Image(array, affine)
    img.header.set_data_dtype(array.dtype)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header["xyzt_units"] = 2 | 8
    if zooms is not None:
        img.header["pixdim"][1:4] = zooms
    raw = img.to_bytes()
    return gzip.compress(raw, mtime=0) if gz else raw


# ---------------------------------------------------------------- independent reading


def reference_read(data: bytes, role: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger = logging.getLogger("nibabel.global")
        level, logger.level = logger.level, logging.CRITICAL + 1
        try:
            return _reference_read(data, role)
        finally:
            logger.level = level


def _reference_read(data: bytes, role: str):
    """(values, affine, zooms) the file means, or None when a reader must refuse it.

    A file refused only for its spacing (pixdim not finite and positive, or unlike the
    affine's column norms) is returned as the string ``"spacing"``: issue 19's W1/W2, which
    another branch fixes (`fuzz_core.KNOWN_PENDING`)."""
    try:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        sizes = {int.from_bytes(raw[:4], "little"), int.from_bytes(raw[:4], "big")}
        if 348 in sizes and raw[344:348] == b"n+1\0":
            img = nib.Nifti1Image.from_bytes(raw)
        elif 540 in sizes and raw[4:8] == b"n+2\0":
            img = nib.Nifti2Image.from_bytes(raw)
        else:
            return None
        if len(img.shape) != 3 or 0 in img.shape:
            return None
        if np.dtype(img.get_data_dtype()).kind not in "biuf":
            return None
        values = np.asanyarray(img.dataobj)
        affine = np.asarray(img.affine, dtype=np.float64)
        zooms = np.asarray(img.header.get_zooms()[:3], dtype=np.float64)
    except Exception:  # noqa: BLE001 - the reference reader could not decode it
        return None
    if not _valid(values, affine, role):
        return None
    if not (np.isfinite(zooms).all() and (zooms > 0).all()) or not np.allclose(
        np.linalg.norm(affine[:3, :3], axis=0), zooms, rtol=0, atol=AFFINE_ATOL
    ):
        return "spacing"
    return values, affine, zooms


def _valid(values, affine, role) -> bool:
    if not np.isfinite(affine).all():
        return False
    if role == "image":
        return not np.isnan(values).any()
    v = values.astype(np.float64)
    return bool(np.isfinite(v).all() and np.isin(v, (0.0, 1.0, 2.0)).all())


def canonical(decoded, role: str) -> bytes:
    """The decoded meaning written as a clean, plain NIfTI-1 file."""
    values, affine, zooms = decoded
    if role == "image":
        v = values.astype(np.float64)
        integral = np.isfinite(v).all() and np.array_equal(v, np.round(v))
        fits = integral and v.min() >= -32768 and v.max() <= 32767
        arr = v.astype(np.int16) if fits else values.astype(np.float32)
    else:
        arr = values.astype(np.float64).astype(np.uint8)
    return encode(arr, affine, zooms)


def expectation(m: Mutant, clean_decoded, role: str) -> Mutant:
    """Fill in `m.expect` (and `m.canonical`) from the independent reading of `m.data`."""
    got = reference_read(m.data, role) if m.data is not None else None
    if got is None or isinstance(got, str):
        m.expect = REFUSE
        m.pending = "W1" if got == "spacing" else None
    elif all(np.array_equal(a, b) for a, b in zip(got, clean_decoded, strict=True)):
        m.expect = SAME
    else:
        m.expect, m.canonical = AS, {m.target: canonical(got, role)}
    return m


# ---------------------------------------------------------------- mutations

_F, _H, _I = "<f", "<h", "<i"
#: Header fields no reader of a 3-D volume may use: changing them must change nothing.
NEUTRAL_FIELDS = {
    "data_type": (4, "10s"),
    "db_name": (14, "18s"),
    "extents": (32, _I),
    "session_error": (36, _H),
    "regular": (38, "c"),
    "dim_info": (39, "c"),
    "intent_p1": (56, _F),
    "slice_start": (74, _H),
    "pixdim4": (92, _F),
    "pixdim7": (104, _F),
    "slice_end": (120, _H),
    "cal_max": (124, _F),
    "cal_min": (128, _F),
    "slice_duration": (132, _F),
    "toffset": (136, _F),
    "glmax": (140, _I),
    "glmin": (144, _I),
    "descrip": (148, "80s"),
    "aux_file": (228, "24s"),
    "intent_name": (328, "16s"),
}
_ODD_FLOATS = (float("nan"), float("inf"), -float("inf"), 0.0, -1.0, 1e-30, 1e12, 1e20, 1e38)


def _put(raw: bytearray, off: int, fmt: str, value) -> None:
    struct.pack_into(fmt, raw, off, value)


def _get(raw: bytes, off: int, fmt: str):
    return struct.unpack_from(fmt, raw, off)[0]


def _odd_float(rng: random.Random, orig: float) -> float:
    return rng.choice(
        [*_ODD_FLOATS, orig * (1 + 1e-7), orig * 1.5, -orig, orig + 1, 1.0, rng.uniform(-5, 5)]
    )


def mut_neutral(rng, raw: bytearray) -> str:
    name = rng.choice(sorted(NEUTRAL_FIELDS))
    off, fmt = NEUTRAL_FIELDS[name]
    if fmt.endswith("s"):
        n = int(fmt[:-1])
        value = bytes(rng.randrange(256) for _ in range(n))
    elif fmt == "c":
        value = bytes([rng.randrange(256)])
    elif fmt == _F:
        value = rng.choice([*_ODD_FLOATS, rng.uniform(-1e6, 1e6)])
    else:
        bits = 16 if fmt == _H else 32
        value = rng.randrange(-(2 ** (bits - 1)), 2 ** (bits - 1))
    _put(raw, off, fmt, value)
    return f"{name}={value!r}"[:80]


def mut_dim(rng, raw: bytearray) -> str:
    i = rng.randrange(8)
    orig = _get(raw, 40 + 2 * i, _H)
    value = rng.choice([0, 1, -1, 2, 3, 4, 5, 7, 8, 9, orig + 1, orig - 1, 32767, -32768])
    _put(raw, 40 + 2 * i, _H, value)
    return f"dim[{i}]={value}"


def mut_datatype(rng, raw: bytearray) -> str:
    codes = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2304]
    value = rng.choice([*codes, rng.randrange(-32768, 32768)])
    _put(raw, 70, _H, value)
    if rng.random() < 0.5:  # keep bitpix consistent half of the time
        bits = {2: 8, 4: 16, 8: 32, 16: 32, 64: 64, 256: 8, 512: 16, 768: 32, 1024: 64, 1280: 64}
        _put(raw, 72, _H, bits.get(value, 8))
        return f"datatype={value} (+bitpix)"
    return f"datatype={value}"


def mut_bitpix(rng, raw: bytearray) -> str:
    value = rng.choice([0, 1, 7, 8, 16, 32, 64, 128, -8, 12])
    _put(raw, 72, _H, value)
    return f"bitpix={value}"


def mut_pixdim(rng, raw: bytearray) -> str:
    i = rng.choice([0, 1, 2, 3, 1, 2, 3])
    orig = _get(raw, 76 + 4 * i, _F)
    value = rng.choice([-1.0, 1.0, 0.0, 2.0, float("nan")]) if i == 0 else _odd_float(rng, orig)
    _put(raw, 76 + 4 * i, _F, value)
    return f"pixdim[{i}]={value!r}"


def mut_vox_offset(rng, raw: bytearray) -> str:
    orig = _get(raw, 108, _F)
    value = rng.choice(
        [0.0, 348.0, 351.0, orig + 16, orig - 1, orig + 0.5, float("nan"), float("inf"), -1.0]
        + [1e10, orig + 1]
    )
    _put(raw, 108, _F, value)
    return f"vox_offset={value!r}"


def mut_scl(rng, raw: bytearray) -> str:
    slope = rng.random() < 0.5
    choices = (0.0, float("nan"), float("inf"), 1.0, 2.0, -1.0, 0.5, 1e-30, 1e30, 1 / 3)
    if not slope:
        choices = (0.0, float("nan"), float("inf"), 1.0, -1.0, 0.5, 1e30, 1024.0)
    value = rng.choice(choices)
    _put(raw, 112 if slope else 116, _F, value)
    return f"{'scl_slope' if slope else 'scl_inter'}={value!r}"


def mut_xform_code(rng, raw: bytearray) -> str:
    which = rng.choice(["qform_code", "sform_code", "both"])
    value = rng.choice([0, 1, 2, 3, 4, 5, -1, 999])
    if which in ("qform_code", "both"):
        _put(raw, 252, _H, value)
    if which in ("sform_code", "both"):
        _put(raw, 254, _H, value)
    return f"{which}={value}"


def mut_quatern(rng, raw: bytearray) -> str:
    i = rng.randrange(6)  # quatern_b, c, d, qoffset_x, y, z
    orig = _get(raw, 256 + 4 * i, _F)
    value = rng.choice([float("nan"), float("inf"), 2.0, -2.0, 1.0, orig + 0.25, 1e30])
    _put(raw, 256 + 4 * i, _F, value)
    if rng.random() < 0.5:
        _put(raw, 254, _H, 0)  # sform off: the qform decides
        return f"quatern[{i}]={value!r} sform_code=0"
    return f"quatern[{i}]={value!r}"


def mut_srow(rng, raw: bytearray) -> str:
    i = rng.randrange(12)
    orig = _get(raw, 280 + 4 * i, _F)
    value = rng.choice(
        [float("nan"), float("inf"), 0.0, orig * (1 + 1e-6), orig + 1e-4, orig * 2, -orig, 1e30]
    )
    _put(raw, 280 + 4 * i, _F, value)
    return f"srow[{i // 4}][{i % 4}]={value!r}"


def mut_magic(rng, raw: bytearray) -> str:
    value = rng.choice([b"ni1\0", b"n+2\0", b"\0\0\0\0", b"n+1 ", bytes(rng.randbytes(4))])
    raw[344:348] = value
    return f"magic={value!r}"


def mut_sizeof_hdr(rng, raw: bytearray) -> str:
    value = rng.choice([0, 347, 349, 540, -348, 2**31 - 1, 0x5C010000])
    _put(raw, 0, _I, value)
    return f"sizeof_hdr={value}"


def mut_flip_header(rng, raw: bytearray) -> str:
    spots = []
    for _ in range(rng.choice([1, 1, 2, 4])):
        pos = rng.randrange(352)
        raw[pos] ^= 1 << rng.randrange(8) if rng.random() < 0.7 else rng.randrange(1, 256)
        spots.append(pos)
    return f"header bytes {spots}"


def mut_flip_data(rng, raw: bytearray) -> str:
    offset = int(_get(raw, 108, _F))
    pos = rng.randrange(offset, len(raw))
    raw[pos] ^= 1 << rng.randrange(8) if rng.random() < 0.5 else rng.randrange(1, 256)
    return f"voxel byte {pos}"


def mut_truncate(rng, raw: bytearray) -> str:
    n = rng.choice([0, 1, 100, 347, 348, 351, 352, len(raw) - 1, rng.randrange(len(raw))])
    del raw[n:]
    return f"cut to {n} bytes"


def mut_append(rng, raw: bytearray) -> str:
    extra = rng.randbytes(rng.choice([1, 7, 4096]))
    raw.extend(extra)
    return f"{len(extra)} bytes appended"


def mut_extension(rng, raw: bytearray) -> str:
    """A NIfTI extension before the voxels: well-formed (must read) or a bad size."""
    content = b"<x>" + rng.randbytes(13)
    good = rng.random() < 0.6
    esize = 8 + len(content) if good else rng.choice([0, 7, 9, 10**6, -8])
    ext = struct.pack("<ii", esize, 6) + content
    raw[348:352] = b"\x01\0\0\0"
    raw[352:352] = ext
    _put(raw, 108, _F, float(352 + len(ext)))
    return f"extension esize={esize}" + ("" if good else " (bad)")


def mut_byteswap(rng, raw: bytearray) -> str:  # noqa: ARG001
    """The same image written big-endian: a valid NIfTI every reader must accept."""
    img = nib.Nifti1Image.from_bytes(bytes(raw))
    hdr = img.header.as_byteswapped(">")
    data = np.asanyarray(img.dataobj.get_unscaled()).astype(hdr.get_data_dtype())
    raw[:] = nib.Nifti1Image(data, None, header=hdr).to_bytes()
    return "big-endian"


def mut_recode(rng, raw: bytearray) -> str:
    """The same values stored as another numeric type (labels as float32, CT as int32...):
    a valid NIfTI every reader must accept, meaning the same volume."""
    img = nib.Nifti1Image.from_bytes(bytes(raw))
    values = np.asanyarray(img.dataobj)
    dtype = rng.choice(
        ["int16", "int32", "float32", "float64"]
        + (["uint8", "int8", "uint16"] if values.min() >= 0 else [])
    )
    raw[:] = encode(values.astype(dtype), img.affine, img.header.get_zooms()[:3])
    return f"stored as {dtype}"


#: kind -> (mutation of the uncompressed bytes, must_read)
RAW_KINDS = {
    "neutral_field": (mut_neutral, True),
    "dim": (mut_dim, False),
    "datatype": (mut_datatype, False),
    "bitpix": (mut_bitpix, False),
    "pixdim": (mut_pixdim, False),
    "vox_offset": (mut_vox_offset, False),
    "scl_slope_inter": (mut_scl, False),
    "xform_code": (mut_xform_code, False),
    "quatern": (mut_quatern, False),
    "srow_affine": (mut_srow, False),
    "magic": (mut_magic, False),
    "sizeof_hdr": (mut_sizeof_hdr, False),
    "flip_header": (mut_flip_header, False),
    "flip_voxels": (mut_flip_data, False),
    "truncate": (mut_truncate, False),
    "append": (mut_append, False),
    "extension": (mut_extension, False),
    "big_endian": (mut_byteswap, True),
    "recode": (mut_recode, True),
}


def gz_flip(rng, data: bytearray) -> tuple[str, bool]:
    pos = rng.randrange(len(data))
    data[pos] ^= 1 << rng.randrange(8)
    return f"gzip byte {pos}", False


def gz_truncate(rng, data: bytearray) -> tuple[str, bool]:
    n = rng.choice(
        [2, 10, 18, len(data) - 1, len(data) - 4, len(data) - 8, rng.randrange(len(data))]
    )
    del data[n:]
    return f"gzip cut to {n}", False


def gz_members(rng, data: bytearray) -> tuple[str, bool]:
    """The same bytes as several concatenated gzip members: valid gzip (must read)."""
    raw = gzip.decompress(bytes(data))
    cuts = sorted(rng.sample(range(1, len(raw)), rng.choice([1, 2, 5])))
    parts = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    data[:] = b"".join(
        gzip.compress(p, compresslevel=rng.choice([1, 6, 9]), mtime=0) for p in parts
    )
    return f"{len(parts)} gzip members", True


def gz_header(rng, data: bytearray) -> tuple[str, bool]:
    """mtime, OS, FNAME/FCOMMENT/FEXTRA in the gzip header: valid gzip (must read)."""
    raw = gzip.decompress(bytes(data))
    body = gzip.compress(raw, mtime=rng.randrange(2**32))[10:]
    flags, extra = 0, b""
    if rng.random() < 0.5:
        flags |= 4
        payload = rng.randbytes(rng.randrange(0, 40))
        extra += struct.pack("<H", len(payload)) + payload
    if rng.random() < 0.5:
        flags |= 8
        extra += b"name\xe9.nii\0"
    if rng.random() < 0.5:
        flags |= 16
        extra += b"a comment\0"
    head = (
        b"\x1f\x8b\x08" + bytes([flags]) + rng.randbytes(4) + b"\x00" + bytes([rng.randrange(256)])
    )
    data[:] = head + extra + body
    return f"gzip header flags {flags}", True


def gz_trailing(rng, data: bytearray) -> tuple[str, bool]:
    data.extend(rng.choice([b"\0" * 8, rng.randbytes(5), b"\x1f\x8b", b"\x1f\x8b\x08\0"]))
    return "bytes after the gzip member", False


GZ_KINDS = {
    "gz_flip": gz_flip,
    "gz_truncate": gz_truncate,
    "gz_members": gz_members,
    "gz_header": gz_header,
    "gz_trailing": gz_trailing,
}


def make_mutant(rng: random.Random, clean: bytes, gz: bool, target: str) -> Mutant:
    """One mutant of the clean file `clean` (gzipped when `gz`)."""
    kinds = list(RAW_KINDS) + (list(GZ_KINDS) if gz else [])
    kind = rng.choice(kinds)
    if kind in GZ_KINDS:
        data = bytearray(clean)
        detail, must_read = GZ_KINDS[kind](rng, data)
        return Mutant("nifti", kind, detail, target, bytes(data), must_read=must_read)
    func, must_read = RAW_KINDS[kind]
    raw = bytearray(gzip.decompress(clean) if gz else clean)
    detail = func(rng, raw)
    data = gzip.compress(bytes(raw), mtime=0) if gz else bytes(raw)
    return Mutant("nifti", kind, detail, target, data, must_read=must_read)
