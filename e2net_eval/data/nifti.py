"""Read and write NIfTI volumes the memory-sane way: one copy, no float64 detour, full read.

Images come back as ``int16`` when the stored values are integers with slope 1 (what CT
scanners write), otherwise ``float32``; labels come back as ``uint8``. A ``.nii.gz`` is read
to the end of its gzip stream, so a truncated or corrupt file is an error, not a short array.
Gzip streams are decoded by ISA-L (``isal``, about twice as fast as zlib) when it is
installed, by the standard library otherwise; both check the CRC and length.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

try:  # ISA-L's gzip reader: same interface and checks as gzip, about 2x faster to decode
    from isal import igzip as _gzip
    from isal.isal_zlib import error as _isal_error
except ImportError:  # pragma: no cover - isal is a dependency; the fallback is correct too
    _gzip, _isal_error = gzip, zlib.error

from e2net_eval.data.case import LABEL_VALUES, TUMOUR
from e2net_eval.errors import InputError
from e2net_eval.util.atomic import atomic_path

_INT16 = np.iinfo(np.int16)
_CHUNK = 1 << 22  # 4 MiB
_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    zlib.error,
    _isal_error,
    nib.filebasedimages.ImageFileError,
)


def _open(path: Path):
    return _gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def read_header(path: Path, case: str | None = None) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape and affine of a NIfTI file, reading only its header."""
    if not path.is_file():
        raise InputError("file not found", case=case, path=path)
    try:
        img = nib.load(str(path), mmap=False)
        return tuple(int(s) for s in img.shape), np.asarray(img.affine, dtype=np.float64)
    except _READ_ERRORS as exc:
        raise InputError(f"unreadable NIfTI header ({exc})", case=case, path=path) from None


def _read_array(fh, proxy) -> np.ndarray:
    """The stored voxels, read in chunks straight into the one array that is returned.

    (A gzip stream's ``readinto`` of the whole volume would first build a second, temporary
    copy of it.)
    """
    dtype = np.dtype(proxy.dtype)
    n_bytes = int(np.prod(proxy.shape, dtype=np.int64)) * dtype.itemsize
    buf = bytearray(n_bytes)
    view = memoryview(buf)
    fh.seek(int(proxy.offset))
    pos = 0
    while pos < n_bytes:
        n = fh.readinto(view[pos : pos + _CHUNK])
        if not n:
            raise EOFError(f"expected {n_bytes} bytes of voxel data, got {pos}")
        pos += n
    return np.ndarray(proxy.shape, dtype=dtype, buffer=buf, order=proxy.order)


def _read_raw(path: Path, case: str | None) -> tuple[np.ndarray, float, float, nib.Nifti1Image]:
    """The stored array (unscaled), slope, intercept and image; the whole stream is consumed."""
    if not path.is_file():
        raise InputError("file not found", case=case, path=path)
    try:
        with _open(path) as fh:
            img = nib.Nifti1Image.from_file_map(
                nib.Nifti1Image.make_file_map({"image": fh, "header": fh}), mmap=False
            )
            if len(img.shape) != 3:
                raise InputError(
                    f"expected a 3D volume, got shape {img.shape}", case=case, path=path
                )
            raw = _read_array(fh, img.dataobj)
            # Read to the end of the stream: gzip checks its CRC and length only there.
            while fh.read(_CHUNK):
                pass
        slope, inter = img.dataobj.slope, img.dataobj.inter
    except InputError:
        raise
    except _READ_ERRORS as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(f"truncated or corrupt NIfTI ({msg})", case=case, path=path) from None
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    return raw, slope, inter, img


def _blocks(arr: np.ndarray, size: int = 16):
    """Views of `arr` in blocks along the last axis: full-volume checks without a full copy."""
    for k in range(0, arr.shape[-1], size):
        yield arr[..., k : k + size]


def _is_integral(arr: np.ndarray) -> bool:
    if arr.dtype.kind in "iub":
        return True
    return all(np.isfinite(b).all() and np.array_equal(b, np.round(b)) for b in _blocks(arr))


def _writeable(arr: np.ndarray) -> np.ndarray:
    return arr if arr.flags.writeable else arr.copy()


def _has_nan(arr: np.ndarray) -> bool:
    return arr.dtype.kind == "f" and any(np.isnan(b).any() for b in _blocks(arr))


def read_image(path: Path, case: str | None = None) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Read a CT volume in HU: (image int16|float32 (X, Y, Z), affine 4x4, spacing)."""
    raw, slope, inter, img = _read_raw(path, case)
    if slope == 1.0 and float(inter).is_integer() and raw.size and _is_integral(raw):
        lo, hi = float(raw.min()) + inter, float(raw.max()) + inter
        if _INT16.min <= lo and hi <= _INT16.max:
            image = _writeable(raw.astype(np.int16, copy=False))
            if inter:
                image += np.int16(inter)  # in place: the range check above rules out overflow
            return image, _affine(img), _spacing(img)
    image = _writeable(raw.astype(np.float32, copy=False))  # scaled in place, one copy
    if slope != 1.0:
        image *= np.float32(slope)
    if inter != 0.0:
        image += np.float32(inter)
    if _has_nan(image):
        raise InputError("image contains NaN", case=case, path=path)
    return image, _affine(img), _spacing(img)


def read_label(path: Path, case: str | None = None) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Read a label volume as uint8 (0/1/2): (label (X, Y, Z), affine, spacing)."""
    raw, slope, inter, img = _read_raw(path, case)
    if slope != 1.0 or inter != 0.0:
        raw = raw * slope + inter
    if raw.dtype != np.uint8:
        if not _is_integral(raw) or (raw.size and (raw.min() < 0 or raw.max() > 255)):
            bad = raw[(raw != np.round(raw)) | (raw < 0) | (raw > 255)]
            raise InputError(
                f"label values outside {{0, 1, 2}} (found {bad.flat[0]!r})", case=case, path=path
            )
        raw = raw.astype(np.uint8)
    # uint8 values are >= 0, so max <= 2 proves every value is 0, 1 or 2: one fast pass,
    # where counting every value (check_label_values) costs a bincount of the volume.
    if raw.size and raw.max() > TUMOUR:
        check_label_values(raw, case, path)  # names the bad values
    return raw, _affine(img), _spacing(img)


def check_label_values(label: np.ndarray, case: str | None, path: Path | None) -> np.ndarray:
    """Voxel counts per label value; InputError if any value is not 0, 1 or 2."""
    counts = np.zeros(256, dtype=np.int64)
    for block in _blocks(label):  # bincount makes an int64 copy: keep it to one slab
        counts += np.bincount(block.ravel(order="K"), minlength=256)
    bad = [v for v in np.nonzero(counts)[0] if v not in LABEL_VALUES]
    if bad:
        raise InputError(
            f"label values outside {{0, 1, 2}}: {', '.join(str(int(v)) for v in bad)}",
            case=case,
            path=path,
        )
    return counts[: len(LABEL_VALUES)]


def _affine(img: nib.Nifti1Image) -> np.ndarray:
    return np.asarray(img.affine, dtype=np.float64)


def _spacing(img: nib.Nifti1Image) -> tuple[float, float, float]:
    return tuple(float(z) for z in img.header.get_zooms()[:3])


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    """Write one volume atomically, keeping its dtype (int16/float32 image, uint8 label)."""
    img = nib.Nifti1Image(array, np.asarray(affine, dtype=np.float64))
    img.header.set_data_dtype(array.dtype)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header["xyzt_units"] = 2 | 8  # mm, s
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
