"""Items 8, 10 and 15 of issue 11: readers check what they read, and every failure is one
line that names the case, the file and the true cause (exit 2), never a traceback."""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import zipfile

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from e2net_eval.data import open_dataset
from e2net_eval.errors import InputError
from tests.helpers.reliability import copy_of, one_error_line, run_proc

# ---------------------------------------------------------------------------------------
# item 8: one DICOM folder is one series
# ---------------------------------------------------------------------------------------


def _interleave_second_series(patient):
    """Copy every slice as a second series (new SeriesInstanceUID) half a step further on."""
    folder = patient / "PATIENT_DICOM"
    names = sorted(p.name for p in folder.iterdir())
    first, second = (pydicom.dcmread(folder / n) for n in names[:2])
    step = np.asarray(second.ImagePositionPatient, float) - np.asarray(
        first.ImagePositionPatient, float
    )
    uid = generate_uid()
    for name in names:
        ds = pydicom.dcmread(folder / name)
        ds.SeriesInstanceUID = uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.ImagePositionPatient = [
            float(v) for v in np.asarray(ds.ImagePositionPatient, float) + step / 2
        ]
        ds.save_as(folder / f"{name}_b")
    return "SeriesInstanceUID", "PATIENT_DICOM"


def _tilt_one_slice(patient):
    path = patient / "PATIENT_DICOM" / "image_3"
    ds = pydicom.dcmread(path)
    c, s = np.cos(0.2), np.sin(0.2)
    iop = [float(v) for v in ds.ImageOrientationPatient]
    ds.ImageOrientationPatient = [*iop[:3], iop[3], iop[4] * c, s]
    ds.save_as(path)
    return "ImageOrientationPatient", "image_3"


def _resize_pixels_of_one_slice(patient):
    path = patient / "PATIENT_DICOM" / "image_2"
    ds = pydicom.dcmread(path)
    ds.PixelSpacing = [float(v) * 1.5 for v in ds.PixelSpacing]
    ds.save_as(path)
    return "PixelSpacing", "image_2"


@pytest.mark.parametrize(
    "damage", [_interleave_second_series, _tilt_one_slice, _resize_pixels_of_one_slice]
)
def test_item08_dicom_folder_must_hold_one_consistent_series(data, tmp_path, damage):
    root = copy_of(data, "ircadb", tmp_path / "in")
    needle, where = damage(root / "3Dircadb1.1")
    ds = open_dataset(root)
    # the image alone, as predict reads it: the series must not be merged or accepted
    with pytest.raises(InputError) as info:
        ds.load("3Dircadb1.1", image=True, label=False)
    assert needle in str(info.value) and where in str(info.value)
    assert "case 3Dircadb1.1" in str(info.value)
    res = run_proc("datasets", "check", root)
    assert res.returncode == 2
    one_error_line(res.stderr, "3Dircadb1.1", needle)
    assert "3Dircadb1.2: shape" in res.stdout  # the good case is still listed


# ---------------------------------------------------------------------------------------
# item 10: decoder failures are clean refusals
# ---------------------------------------------------------------------------------------


def _empty_nifti(root):
    (root / "volume-1.nii").write_bytes(b"")
    return "case 1", "volume-1.nii", "empty file"


def _short_nifti(root):
    path = root / "volume-1.nii"
    path.write_bytes(path.read_bytes()[:200])
    return "case 1", "volume-1.nii", "too short"


def _gzip_that_is_not_nifti(root):
    (root / "volume-1.nii").unlink()
    (root / "volume-1.nii.gz").write_bytes(gzip.compress(b"just some text, not an image\n" * 30))
    return "case 1", "volume-1.nii.gz", "not a NIfTI"


def _header_claims_64_gib(root):
    """A valid header whose dimensions describe 64 GiB of int32 voxels, in a small file."""
    path = root / "segmentation-1.nii"
    raw = bytearray(path.read_bytes())
    struct.pack_into("<8h", raw, 40, 3, 4096, 4096, 1024, 1, 1, 1, 1)  # dim[0..7]
    struct.pack_into("<hh", raw, 70, 8, 32)  # datatype int32, bitpix
    path.write_bytes(bytes(raw))
    return "case 1", "segmentation-1.nii", "64 GiB"


def _header_claims_64_gib_gz(root):
    _header_claims_64_gib(root)
    src = root / "segmentation-1.nii"
    (root / "segmentation-1.nii.gz").write_bytes(gzip.compress(src.read_bytes()))
    src.unlink()
    return "case 1", "segmentation-1.nii.gz", "64 GiB"


def _corrupt_zip_member(root):
    """Flip bytes inside one member's compressed data (CRC or inflate error on reading)."""
    path = root / "3Dircadb1.2" / "PATIENT_DICOM.zip"
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("PATIENT_DICOM/image_3")
    raw = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for k in range(start + 10, start + 40):
        raw[k] ^= 0x5A
    path.write_bytes(bytes(raw))
    return "case 3Dircadb1.2", "PATIENT_DICOM.zip:PATIENT_DICOM/image_3", "corrupt"


def _deflate64_zip_member(root):
    """Mark one member as compressed with method 9 (deflate64), which zipfile cannot read."""
    path = root / "3Dircadb1.2" / "MASKS_DICOM.zip"
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("MASKS_DICOM/liver/image_1")
    raw = bytearray(path.read_bytes())
    struct.pack_into("<H", raw, info.header_offset + 8, 9)  # local file header
    pos = raw.find(b"PK\x01\x02")
    while pos != -1:  # the member's central directory record
        name_len = struct.unpack_from("<H", raw, pos + 28)[0]
        if raw[pos + 46 : pos + 46 + name_len] == info.filename.encode():
            struct.pack_into("<H", raw, pos + 10, 9)
            break
        pos = raw.find(b"PK\x01\x02", pos + 4)
    assert pos != -1
    path.write_bytes(bytes(raw))
    return "case 3Dircadb1.2", "MASKS_DICOM.zip:MASKS_DICOM/liver/image_1", "deflate64"


DECODER_FAILURES = {
    "0-byte NIfTI": ("lits", _empty_nifti),
    "short NIfTI": ("lits", _short_nifti),
    "gzip that is not NIfTI": ("lits", _gzip_that_is_not_nifti),
    "header claims 64 GiB": ("lits", _header_claims_64_gib),
    "header claims 64 GiB, gzipped": ("lits", _header_claims_64_gib_gz),
    "corrupt zip member": ("ircadb_zip", _corrupt_zip_member),
    "unsupported zip compression": ("ircadb_zip", _deflate64_zip_member),
}


@pytest.mark.parametrize("name", list(DECODER_FAILURES))
def test_item10_decoder_failures_are_one_line_exit_2(data, tmp_path, name):
    source, damage = DECODER_FAILURES[name]
    root = copy_of(data, source, tmp_path / "in")
    case, file, cause = damage(root)
    res = run_proc("datasets", "check", root)
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, case, file, cause)
    res = run_proc("datasets", "convert", root, tmp_path / "out")
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, case, file, cause)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # nothing half-written


def test_item10_datasets_check_lists_every_bad_case(data, tmp_path):
    root = copy_of(data, "lits", tmp_path / "in")
    (root / "volume-0.nii").write_bytes(b"")
    _short_nifti(root)  # case 1
    res = run_proc("datasets", "check", root)
    assert res.returncode == 2
    unreadable = [ln for ln in res.stdout.splitlines() if "UNREADABLE" in ln]
    assert len(unreadable) == 2, res.stdout
    assert "0: UNREADABLE" in unreadable[0] and "1: UNREADABLE" in unreadable[1]
    assert "2: shape" in res.stdout
    one_error_line(res.stderr, "2 of 3 cases")


def test_item10_nifti2_is_read_like_nifti1(data, tmp_path):
    """NIfTI-2 (540-byte header) is a valid NIfTI: read, not a crash and not a refusal."""
    root = copy_of(data, "lits", tmp_path / "in")
    want = open_dataset(root).load("1")
    for stem in ("volume-1", "segmentation-1"):
        img = nib.load(root / f"{stem}.nii", mmap=False)
        arr = np.asarray(img.dataobj).copy()
        two = nib.Nifti2Image(arr, img.affine)
        two.header.set_data_dtype(arr.dtype)
        nib.save(two, root / f"{stem}.nii")
    got = open_dataset(root).load("1")
    assert np.array_equal(got.image, want.image) and np.array_equal(got.label, want.label)
    assert np.allclose(got.affine, want.affine) and np.allclose(got.spacing, want.spacing)
    res = run_proc("datasets", "check", root)
    assert res.returncode == 0, res.stderr


def test_item10_truncated_checkpoints_are_input_errors(one_step_run, train_data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(one_step_run, run)
    best, last = run / "stage1" / "best.pt", run / "stage1" / "checkpoint_last.pt"
    best.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    res = run_proc(
        "predict", run, "--data", train_data, "-o", tmp_path / "pred", "--config", "stage1"
    )
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, "best.pt")
    last.write_bytes(last.read_bytes()[:1000])
    res = run_proc(
        "train", "stage1", "--data", train_data, "-o", run, "--resume", "--max-steps", "2"
    )
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, "checkpoint_last.pt")


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_item10_an_unwritable_output_is_found_before_any_work(
    data, one_step_run, train_data, tmp_path, command
):
    """The first case would be killed by the fault point: exit 2 proves nothing ran first."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if command == "evaluate":
        args = ["evaluate", _predictions(data, tmp_path), data / "lits", "-o", locked / "out"]
    else:
        args = ["predict", one_step_run, "--data", train_data, "-o", locked / "out"]
    res = run_proc(*args, "--no-progress", fault=f"{command}.case:kill", obey_modes=True)
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, "locked", "permission denied")
    assert list(locked.iterdir()) == []


# ---------------------------------------------------------------------------------------
# item 15: the message says what is really wrong
# ---------------------------------------------------------------------------------------


def _predictions(data, tmp_path):
    pred = tmp_path / "pred"
    pred.mkdir()
    for cid in ("0", "1", "2"):
        shutil.copy(data / "lits" / f"segmentation-{cid}.nii", pred / f"{cid}.nii")
    return pred


def _symlink_loop_prediction(data, tmp_path):
    pred = _predictions(data, tmp_path)
    (pred / "1.nii").unlink()
    os.symlink("1.nii", pred / "1.nii")  # points at itself
    return ["evaluate", pred, data / "lits", "-o", tmp_path / "ev"], (
        "case 1",
        "1.nii",
        "symlink loop",
    )


def _directory_named_like_a_prediction(data, tmp_path):
    pred = _predictions(data, tmp_path)
    (pred / "1.nii").unlink()
    (pred / "1.nii.gz").mkdir()
    return ["evaluate", pred, data / "lits", "-o", tmp_path / "ev"], (
        "case 1",
        "1.nii.gz",
        "directory",
    )


def _stray_file_in_a_dicom_folder(data, tmp_path):
    root = copy_of(data, "ircadb", tmp_path / "irc")
    (root / "3Dircadb1.2" / "PATIENT_DICOM" / "notes.txt").write_text("scanned on tuesday\n")
    return ["datasets", "check", root], ("case 3Dircadb1.2", "PATIENT_DICOM/notes.txt")


def _permission_denied(data, tmp_path):
    lits = copy_of(data, "lits", tmp_path / "lits")
    (lits / "volume-1.nii").chmod(0o000)
    return ["datasets", "check", lits], ("case 1", "volume-1.nii", "permission denied")


CAUSES = [
    _symlink_loop_prediction,
    _directory_named_like_a_prediction,
    _stray_file_in_a_dicom_folder,
    _permission_denied,
]


@pytest.mark.parametrize("cause", CAUSES)
def test_item15_messages_name_the_real_cause(data, tmp_path, cause):
    args, needles = cause(data, tmp_path)
    variants = [[], ["--allow-missing"]] if args[0] == "evaluate" else [[]]
    for extra in variants:  # an unusable prediction is never "missing", so never empty
        res = run_proc(*args, *extra, obey_modes=True)
        assert res.returncode == 2, (extra, res.stderr)
        line = one_error_line(res.stderr, *needles)
        assert "corrupt" not in line
    assert not (tmp_path / "ev").exists()
