"""Readers: voxel values, dtypes, spacing and affine read back for every layout."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from e2net_eval.data import open_dataset, window_hu
from e2net_eval.data.anatomy import phantom_case
from e2net_eval.data.dicom import TUMOUR_FOLDER
from e2net_eval.data.nifti import read_image, read_label
from tests.helpers.phantom_data import SEED, SIZE, SLICES, canonical


def gen(index):
    return phantom_case(SEED, index, SIZE, SLICES)


@pytest.mark.parametrize("layout", ["lits", "lits_gz", "msd"])
def test_nifti_layouts_read_back_exactly(layout_phantoms, layout):
    ds = open_dataset(layout_phantoms / layout)
    assert ds.layout == ("msd" if layout == "msd" else "lits")
    assert ds.case_ids()[:2] == ["0", "1"]
    for cid in ds.case_ids()[:3]:
        case, ref = ds.load(cid), gen(int(cid))
        assert case.image.dtype == np.int16 and case.label.dtype == np.uint8
        assert np.array_equal(case.image, ref.image)
        assert np.array_equal(case.label, ref.label)
        if layout == "lits" and cid == "2":  # written with the IRCAD-in-LiTS 1 mm header
            assert case.spacing == (1.0, 1.0, 1.0)
            assert np.allclose(np.abs(np.diag(case.affine)[:3]), 1.0)
        else:
            assert np.allclose(case.spacing, ref.spacing, atol=1e-5)
            assert np.allclose(case.affine, ref.affine, atol=1e-4)


def test_natural_order_and_lazy_label_only(layout_phantoms):
    ds = open_dataset(layout_phantoms / "lits")
    assert ds.case_ids() == [str(i) for i in range(8)]
    case = ds.load("3", image=False)
    assert case.image is None and case.label.shape == gen(3).label.shape
    assert [c.case_id for c in ds][:2] == ["0", "1"]


@pytest.mark.parametrize("folder", ["ircadb", "ircadb_zip"])
def test_ircadb_reads_dicom_geometry_and_tumour_union(layout_phantoms, folder):
    ds = open_dataset(layout_phantoms / folder)
    assert ds.layout == "ircadb"
    assert ds.case_ids() == ["3Dircadb1.1", "3Dircadb1.2", "3Dircadb1.3"]
    for cid, index in zip(ds.case_ids(), [2, 1, 5], strict=True):
        case, ref = ds.load(cid), gen(index)
        assert case.image.dtype == np.int16 and case.label.dtype == np.uint8
        # Same voxels at the same world positions: compare in RAS axis order.
        assert np.array_equal(canonical(case.image, case.affine), canonical(ref.image, ref.affine))
        assert np.array_equal(canonical(case.label, case.affine), canonical(ref.label, ref.affine))
        assert np.allclose(sorted(case.spacing[:2]), sorted(ref.spacing[:2]), atol=1e-5)
        assert np.isclose(case.spacing[2], ref.spacing[2], atol=1e-5)
        # The affine maps every voxel to the same world point as the generator's.
        ijk = np.array([[0, 0, 0, 1], [5, 9, 3, 1], [63, 63, case.shape[2] - 1, 1]]).T
        world = case.affine @ ijk
        ref_ijk = np.linalg.solve(ref.affine, world)
        assert np.allclose(ref_ijk, np.round(ref_ijk), atol=1e-4)
        r = np.round(ref_ijk[:3]).astype(int)
        assert np.array_equal(case.image[tuple(ijk[:3])], ref.image[tuple(r)])
        # Distractor folders exist and are not tumour.
        assert "leftsurretumor" in case.extra["other_folders"]
        assert all(TUMOUR_FOLDER.match(f) for f in case.extra["tumour_folders"])
        assert (case.label == 2).any() == bool(ref.tumour_masks)


def test_ircadb_slice_axis_follows_the_normal(layout_phantoms):
    """DICOM slices are ordered by increasing position along cross(row, column cosines)."""
    ds = open_dataset(layout_phantoms / "ircadb")
    for cid in ds.case_ids():
        lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ds.load(cid, label=False).affine
        normal = np.cross(lps[:3, 0], lps[:3, 1])
        assert lps[:3, 2] @ normal > 0


def test_tumour_folder_pattern():
    ok = ["livertumor", "livertumor01", "livertumor07", "livertumor1", "livertumors", "LiverTumor2"]
    bad = [
        "leftsurretumor",
        "rightsurretumor",
        "tumor",
        "metastasectomie",
        "livercyst",
        "liverkyst",
        "liverkyste",
        "Stones",
        "liver",
        "livertumor_a",
    ]
    assert all(TUMOUR_FOLDER.match(n) for n in ok)
    assert not any(TUMOUR_FOLDER.match(n) for n in bad)


def test_scaled_and_float_images(tmp_path):
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 5
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_slope_inter(0.5, -10)
    nib.save(img, tmp_path / "scaled.nii.gz")
    image, _, _ = read_image(tmp_path / "scaled.nii.gz")
    assert image.dtype == np.float32 and np.allclose(image, data * 0.5 - 10)
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4)), tmp_path / "f.nii")
    image, _, _ = read_image(tmp_path / "f.nii")
    assert image.dtype == np.int16 and np.array_equal(image, data)
    real = data.astype(np.float32) + 0.25
    nib.save(nib.Nifti1Image(real, np.eye(4)), tmp_path / "r.nii")
    assert read_image(tmp_path / "r.nii")[0].dtype == np.float32
    nib.save(nib.Nifti1Image((data % 3).astype(np.int16), np.eye(4)), tmp_path / "l.nii")
    label, _, _ = read_label(tmp_path / "l.nii")
    assert label.dtype == np.uint8 and np.array_equal(label, data % 3)


def test_window_hu():
    x = np.array([-1000, -100, 70, 240, 3000], dtype=np.int16)
    y = window_hu(x)
    assert y.dtype == np.float32
    assert np.allclose(y, [-1, -1, 0, 1, 1])
    assert x[0] == -1000  # input untouched


def test_masks_without_positions_match_by_file_name(layout_phantoms, tmp_path):
    import shutil

    import pydicom

    root = tmp_path / "irc"
    shutil.copytree(layout_phantoms / "ircadb", root)
    ref = open_dataset(layout_phantoms / "ircadb").load("3Dircadb1.1")  # slices in write order
    n = ref.shape[2]
    for path in (root / "3Dircadb1.1" / "MASKS_DICOM").rglob("image_*"):
        ds = pydicom.dcmread(path)
        del ds.ImagePositionPatient
        ds.InstanceNumber = n - int(ds.InstanceNumber) + 1  # order by number is now wrong
        ds.save_as(path)
    case = open_dataset(root).load("3Dircadb1.1")
    assert np.array_equal(case.label, ref.label)


@pytest.mark.parametrize("name", ["v.nii.gz", "v.nii"])
def test_one_copy_in_memory(tmp_path, name):
    """Image and label reads peak at one copy of the result plus fixed-size buffers."""
    import tracemalloc

    data = np.random.default_rng(0).integers(-1000, 1000, (256, 256, 96)).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / name)
    nib.save(nib.Nifti1Image((data % 3).astype(np.uint8), np.eye(4)), tmp_path / f"l{name}")
    for reader, path in ((read_image, tmp_path / name), (read_label, tmp_path / f"l{name}")):
        tracemalloc.start()
        arr = reader(path)[0]
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert type(arr) is np.ndarray  # not a memory map of a file that may be rewritten
        assert peak < 1.2 * arr.nbytes + 8 * 2**20  # 4 MiB read chunks, 16-slice slabs
