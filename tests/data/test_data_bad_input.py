"""Every bad input: exit code 2, one line naming the case and the file, nothing written."""

from __future__ import annotations

import shutil
import zipfile

import nibabel as nib
import numpy as np
import pydicom
import pytest

from e2net_eval.data import write_phantom
from e2net_eval.data.phantom import PhantomSpec

KW = {"seed": 11, "size": 32, "slices": (6, 8)}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    write_phantom(root / "lits", PhantomSpec("lits", 2, **KW))
    write_phantom(root / "lits_gz", PhantomSpec("lits", 2, gzip=True, **KW))
    write_phantom(root / "ircadb", PhantomSpec("ircadb", 2, **KW))
    write_phantom(root / "ircadb_zip", PhantomSpec("ircadb", 2, zipped=True, **KW))
    return root


def _copy(clean, name, tmp_path):
    dst = tmp_path / "in"
    shutil.copytree(clean / name, dst)
    return dst


def _resave(path, array, affine):
    img = nib.Nifti1Image(array, affine)
    img.header.set_data_dtype(array.dtype)
    nib.save(img, path)


def _lits_missing_image(d):
    (d / "volume-1.nii").unlink()
    return "case 1", "segmentation-1.nii"


def _lits_missing_label(d):
    (d / "segmentation-1.nii").unlink()
    return "case 1", "volume-1.nii"


def _shape_mismatch(d):
    img = nib.load(d / "segmentation-1.nii", mmap=False)
    _resave(d / "segmentation-1.nii", np.asarray(img.dataobj)[:-1].copy(), img.affine)
    return "case 1", "segmentation-1.nii"


def _affine_mismatch(d):
    img = nib.load(d / "segmentation-1.nii", mmap=False)
    affine = img.affine.copy()
    affine[0, 3] += 5.0
    _resave(d / "segmentation-1.nii", np.asarray(img.dataobj), affine)
    return "case 1", "segmentation-1.nii"


def _bad_label_value(d):
    img = nib.load(d / "segmentation-0.nii", mmap=False)
    data = np.asarray(img.dataobj).copy()
    data[3, 4, 2] = 3
    _resave(d / "segmentation-0.nii", data, img.affine)
    return "case 0", "segmentation-0.nii"


def _nan_image(d):
    img = nib.load(d / "volume-1.nii", mmap=False)
    data = np.asarray(img.dataobj).astype(np.float32)
    data[1, 2, 3] = np.nan
    _resave(d / "volume-1.nii", data, img.affine)
    return "case 1", "volume-1.nii"


def _truncated_nii(d):
    path = d / "volume-1.nii"
    path.write_bytes(path.read_bytes()[:-100])
    return "case 1", "volume-1.nii"


def _truncated_gz(d):
    path = d / "volume-1.nii.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return "case 1", "volume-1.nii.gz"


def _truncated_gz_footer(d):
    """Only the gzip footer (CRC, length) is missing: caught by reading to the end."""
    path = d / "segmentation-0.nii.gz"
    path.write_bytes(path.read_bytes()[:-6])
    return "case 0", "segmentation-0.nii.gz"


def _corrupt_gz(d):
    path = d / "volume-0.nii.gz"
    raw = bytearray(path.read_bytes())
    raw[200:260] = b"\x00" * 60
    path.write_bytes(bytes(raw))
    return "case 0", "volume-0.nii.gz"


def _zip_without_folders(d):
    path = d / "3Dircadb1.2" / "MASKS_DICOM.zip"
    path.unlink()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("something/else.txt", "x")
    return "case 3Dircadb1.2", "MASKS_DICOM.zip"


def _not_a_zip(d):
    (d / "3Dircadb1.1" / "PATIENT_DICOM.zip").write_bytes(b"not a zip at all")
    return "case 3Dircadb1.1", "PATIENT_DICOM.zip"


def _dicom_missing_slice(d):
    (d / "3Dircadb1.2" / "PATIENT_DICOM" / "image_3").unlink()
    return "case 3Dircadb1.2", "PATIENT_DICOM"


def _dicom_mixed_sizes(d):
    path = d / "3Dircadb1.1" / "PATIENT_DICOM" / "image_2"
    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns = 16, 16
    ds.PixelData = np.zeros((16, 16), dtype=np.uint16).tobytes()
    ds.save_as(path)
    return "case 3Dircadb1.1", "PATIENT_DICOM"


def _dicom_missing_liver(d):
    shutil.rmtree(d / "3Dircadb1.1" / "MASKS_DICOM" / "liver")
    return "case 3Dircadb1.1", "MASKS_DICOM"


def _dicom_empty_series(d):
    shutil.rmtree(d / "3Dircadb1.2" / "PATIENT_DICOM")
    (d / "3Dircadb1.2" / "PATIENT_DICOM").mkdir()
    return "case 3Dircadb1.2", "PATIENT_DICOM"


def _dicom_mask_missing_slice(d):
    (d / "3Dircadb1.1" / "MASKS_DICOM" / "liver" / "image_0").unlink()
    return "case 3Dircadb1.1", "liver"


CASES = {
    "missing image": ("lits", _lits_missing_image),
    "missing label": ("lits", _lits_missing_label),
    "shape mismatch": ("lits", _shape_mismatch),
    "affine mismatch": ("lits", _affine_mismatch),
    "label value 3": ("lits", _bad_label_value),
    "NaN in image": ("lits", _nan_image),
    "truncated .nii": ("lits", _truncated_nii),
    "truncated .nii.gz": ("lits_gz", _truncated_gz),
    "gzip footer missing": ("lits_gz", _truncated_gz_footer),
    "corrupt .nii.gz": ("lits_gz", _corrupt_gz),
    "zip without folders": ("ircadb_zip", _zip_without_folders),
    "not a zip": ("ircadb_zip", _not_a_zip),
    "DICOM missing slice": ("ircadb", _dicom_missing_slice),
    "DICOM mixed sizes": ("ircadb", _dicom_mixed_sizes),
    "no liver mask": ("ircadb", _dicom_missing_liver),
    "empty series folder": ("ircadb", _dicom_empty_series),
    "mask missing slice": ("ircadb", _dicom_mask_missing_slice),
}


def _assert_one_line(err, *needles):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_exit_2_one_line_no_output(name, clean, tmp_path, run_cli):
    source, damage = CASES[name]
    root = _copy(clean, source, tmp_path)
    case, file = damage(root)
    out = tmp_path / "out"
    code, _, err = run_cli("datasets", "convert", root, out)
    assert code == 2
    _assert_one_line(err, case, file)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["in"]  # no temporary left behind
    code, stdout, err = run_cli("datasets", "check", root)
    assert code == 2
    _assert_one_line(err, case, file)
    assert "UNREADABLE" in stdout


@pytest.mark.parametrize("command", ["check", "convert", "split"])
def test_missing_and_empty_root(tmp_path, run_cli, command):
    extra = {"convert": [tmp_path / "o"], "split": ["--seed", "0"], "check": []}[command]
    code, _, err = run_cli("datasets", command, tmp_path / "nope", *extra)
    assert code == 2
    _assert_one_line(err, "nope", "does not exist")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("datasets", command, tmp_path / "empty", *extra)
    assert code == 2
    _assert_one_line(err, "empty", "empty folder")
    assert not (tmp_path / "o").exists()


def test_gzip_footer_case_is_only_caught_by_reading_to_the_end(clean, tmp_path):
    """nibabel alone reads the footer-less file without complaint; our reader does not."""
    root = _copy(clean, "lits_gz", tmp_path)
    _truncated_gz_footer(root)
    img = nib.load(root / "segmentation-0.nii.gz")
    assert np.asarray(img.dataobj).shape == img.shape


def test_outputs_refused_where_they_would_do_harm(clean, tmp_path, run_cli):
    root = _copy(clean, "lits", tmp_path)
    code, _, err = run_cli("datasets", "convert", root, root / "nii")
    assert code == 2 and "inside the input folder" in err and not (root / "nii").exists()
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli("datasets", "phantom", tmp_path / "file", "--cases", "1")
    assert code == 2 and "not a folder" in err
    (tmp_path / "outer").mkdir()
    (tmp_path / "outer" / "3Dircadb1.1.zip").write_bytes(b"PK")
    code, _, err = run_cli("datasets", "check", tmp_path / "outer")
    assert code == 2 and "unpack the outer" in err
