"""Read and write NIfTI volumes the memory-sane way: one copy, no float64 detour, full read.

Images come back as ``int16`` when the stored values are integers with slope 1 (what CT
scanners write), otherwise ``float32``; labels come back as ``uint8``. A ``.nii.gz`` is read
to the end of its gzip stream, so a truncated or corrupt file is an error, not a short array.
Gzip streams are decoded by ISA-L (``isal``, about twice as fast as zlib) when it is
installed, by the standard library otherwise; both check the CRC and length.
NIfTI-1 and NIfTI-2 single files are read, gzipped or not (decided by content, not name).
Every failure is a `ReadError` (one line: case, file, cause); a header is checked against
the file's size and the machine's memory before the voxel buffer is allocated.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

try:  # ISA-L's gzip reader: same interface and checks as gzip, about 2x faster to decode
    from isal import igzip as _gzip
except ImportError:  # pragma: no cover - isal is a dependency; the fallback is correct too
    _gzip = gzip

from e2net_eval.data.case import LABEL_VALUES, TUMOUR
from e2net_eval.data.spacing import check_spacing
from e2net_eval.errors import InputError, ReadError
from e2net_eval.util.atomic import atomic_path
from e2net_eval.util.imports import import_nibabel
from e2net_eval.util.reading import decoding, gib, memory_limit_bytes, readable_file

nib = import_nibabel()
_INT16 = np.iinfo(np.int16)
_CHUNK = 1 << 22  # 4 MiB
_GZIP_MAGIC = b"\x1f\x8b"
#: Deflate cannot expand data more than about 1032:1; a header describing more voxel bytes
#: than that times the file's size is refused before any memory is allocated.
GZIP_MAX_RATIO = 1032
_WHAT = "NIfTI file"


def _is_gzip(path: Path) -> bool:
    """By content, not by name: a gzipped ``.nii`` and a plain ``.nii.gz`` both read."""
    with open(path, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def _image_class(head: bytes, path: Path, case: str | None):
    """NIfTI-1 or NIfTI-2 (single file) from the first bytes; ReadError for anything else."""
    if len(head) < 348:
        raise ReadError(
            f"too short for a NIfTI header ({len(head)} bytes, a header has 348)",
            case=case,
            path=path,
        )
    sizes = {int.from_bytes(head[:4], "little"), int.from_bytes(head[:4], "big")}
    if 348 in sizes:
        magic = head[344:348]
        if magic == b"n+1\0":
            return nib.Nifti1Image
        if magic == b"ni1\0":
            raise ReadError(
                "a .hdr/.img pair header; only single-file NIfTI (.nii, .nii.gz) is read",
                case=case,
                path=path,
            )
        raise ReadError(
            f"not a NIfTI-1 file (magic {magic!r}: Analyze 7.5 or a damaged header)",
            case=case,
            path=path,
        )
    if 540 in sizes:
        if len(head) >= 540 and head[4:8] == b"n+2\0":
            return nib.Nifti2Image
        raise ReadError("not a NIfTI-2 file (damaged header)", case=case, path=path)
    raise ReadError(
        f"not a NIfTI file (header size field {min(sizes)}, expected 348 or 540)",
        case=case,
        path=path,
    )


def _check_size(img, st_size: int, gz: bool, path: Path, case: str | None) -> None:
    """Refuse a header whose voxel data cannot be in the file, or cannot fit in memory."""
    proxy = img.dataobj
    dtype = np.dtype(proxy.dtype)
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise ReadError(f"unsupported voxel type {dtype} (not a number)", case=case, path=path)
    shape = tuple(int(s) for s in proxy.shape)
    if len(shape) != 3:
        raise InputError(f"expected a 3D volume, got shape {shape}", case=case, path=path)
    if 0 in shape:
        raise ReadError(f"empty volume (shape {shape})", case=case, path=path)
    n_bytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    end = int(proxy.offset) + n_bytes
    if not gz and end > st_size:
        raise ReadError(
            f"truncated: the header describes {n_bytes} bytes of voxels ({gib(n_bytes)}) "
            f"from offset {int(proxy.offset)}, the file holds {st_size} bytes",
            case=case,
            path=path,
        )
    if gz and end > GZIP_MAX_RATIO * st_size + (1 << 16):
        raise ReadError(
            f"the header describes {n_bytes} bytes of voxels ({gib(n_bytes)}), more than a "
            f"{st_size}-byte gzip file can hold: truncated or a corrupt header",
            case=case,
            path=path,
        )
    limit = memory_limit_bytes()
    if limit is not None and n_bytes > limit:
        raise ReadError(
            f"the header describes {gib(n_bytes)} of voxels, more than this machine's "
            f"memory ({gib(limit)})",
            case=case,
            path=path,
        )


def _load_header(fh, path: Path, case: str | None, st_size: int, gz: bool):
    """Parse the header from the open stream (left at an undefined position)."""
    try:
        head = fh.read(540)
    except gzip.BadGzipFile as exc:  # isal.igzip raises the same class
        raise ReadError(f"not gzip data ({exc})", case=case, path=path) from None
    klass = _image_class(head, path, case)
    # the stored pixdim, checked before nibabel's header check "fixes" a 0 into 1 mm (for
    # the axes the file has: a 2D file is refused by `_check_size`, for its shape)
    ndim, pixdim = _stored_geometry(head, klass)
    zooms = np.abs(pixdim[1:4])
    check_spacing(zooms[: max(0, min(ndim, 3))], source="pixdim", case=case, path=path)
    fh.seek(0)
    img = klass.from_file_map(klass.make_file_map({"image": fh, "header": fh}), mmap=False)
    _check_size(img, st_size, gz, path, case)
    check_spacing(zooms, affine=_affine(img), source="pixdim", case=case, path=path)
    return img


def _stored_geometry(head: bytes, klass) -> tuple[int, np.ndarray]:
    """``dim[0]`` and ``pixdim`` as stored: nibabel's header check replaces a 0 in pixdim
    by 1 (and a negative value by its magnitude) before anyone can see it, so a spacing of
    0 would pass as 1 mm."""
    order = "<" if int.from_bytes(head[:4], "little") in (348, 540) else ">"
    two = klass is nib.Nifti2Image
    dim0 = np.frombuffer(
        head, dtype=f"{order}{'i8' if two else 'i2'}", count=1, offset=16 if two else 40
    )
    pixdim = np.frombuffer(
        head, dtype=f"{order}{'f8' if two else 'f4'}", count=8, offset=104 if two else 76
    )
    return int(dim0[0]), pixdim.astype(np.float64)


@contextmanager
def _opened(path: Path, case: str | None) -> Iterator[tuple[object, nib.Nifti1Image]]:
    """The open (possibly gzip) stream and its parsed header; every failure inside the
    block is a `ReadError` naming the file and its cause (see `util.reading`)."""
    st = readable_file(path, case, _WHAT)
    with decoding(path, case, _WHAT):
        gz = _is_gzip(path)
        with _gzip.open(path, "rb") if gz else open(path, "rb") as fh:
            yield fh, _load_header(fh, path, case, st.st_size, gz)


def read_header(path: Path, case: str | None = None) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape and affine of a NIfTI file, reading only its header."""
    with _opened(Path(path), case) as (_, img):
        return tuple(int(s) for s in img.shape), np.asarray(img.affine, dtype=np.float64)


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
            raise EOFError(f"truncated: expected {n_bytes} bytes of voxel data, got {pos}")
        pos += n
    return np.ndarray(proxy.shape, dtype=dtype, buffer=buf, order=proxy.order)


def _read_raw(path: Path, case: str | None) -> tuple[np.ndarray, float, float, nib.Nifti1Image]:
    """The stored array (unscaled), slope, intercept and image; the whole stream is consumed.

    Every failure is a `ReadError` naming the file and its cause (see `util.reading`).
    """
    with _opened(Path(path), case) as (fh, img):
        raw = _read_array(fh, img.dataobj)
        # Read to the end of the stream: gzip checks its CRC and length only there.
        while fh.read(_CHUNK):
            pass
    slope, inter = img.dataobj.slope, img.dataobj.inter
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


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray, *, units: bool = True) -> None:
    """Write one volume atomically, keeping its dtype (int16/float32 image, uint8 label).

    `units`: the header names its units (mm, s); predictions leave them unset (as written
    since their first version)."""
    img = nib.Nifti1Image(array, np.asarray(affine, dtype=np.float64))
    img.header.set_data_dtype(array.dtype)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    if units:
        img.header["xyzt_units"] = 2 | 8  # mm, s
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
