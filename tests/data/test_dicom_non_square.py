"""3DIRCADb DICOM with non-square pixels, written here by hand: PixelSpacing is
(row spacing, column spacing) = (distance between rows, distance between columns), so the
array axis of columns gets PixelSpacing[1] (D06 in tools/mutate.py). The phantom writes
square pixels only, so its round trips cannot tell the two apart."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from e2net_eval.data import open_dataset
from e2net_eval.metrics import assd

ROWS, COLS = 4, 6
ROW_SPACING, COL_SPACING = 0.5, 0.8  # DICOM PixelSpacing = [0.5, 0.8]
SLICE_Z = (10.0, 12.5, 15.0)  # 2.5 mm apart along +z (LPS)
ORIGIN = (-20.0, 30.0)  # LPS x, y of the first pixel


def _slice(
    k: int, pixels: np.ndarray, series: str, *, image: bool, slope: float = 1.0
) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    uid = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, uid
    ds.Modality, ds.SeriesInstanceUID = "CT", series
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = [ORIGIN[0], ORIGIN[1], SLICE_Z[k]]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]  # rows run along +x, columns along +y
    ds.PixelSpacing = [ROW_SPACING, COL_SPACING]
    ds.SliceThickness = 2.5
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    if image:
        ds.RescaleIntercept, ds.RescaleSlope = -1024, slope
    return ds


def _series(folder, planes: list[np.ndarray], *, image: bool, slope: float = 1.0) -> None:
    folder.mkdir(parents=True)
    series = generate_uid()
    for k, px in enumerate(planes):
        ds = _slice(k, px, series, image=image, slope=slope)
        ds.save_as(folder / f"image_{k}", enforce_file_format=True)


@pytest.fixture(scope="module")
def patient_root(tmp_path_factory):
    """One patient: HU = 100 * row + column + 1000 * slice; liver everywhere on slice 1,
    tumour at pixel (row 1, column 4) of slice 1."""
    root = tmp_path_factory.mktemp("ircadb")
    patient = root / "3Dircadb1.1"
    r, c = np.mgrid[:ROWS, :COLS]
    hu = [(100 * r + c + 1000 * k + 1024).astype(np.uint16) for k in range(3)]
    liver = [np.full((ROWS, COLS), 255 * (k == 1), np.uint8) for k in range(3)]
    tumour = [np.zeros((ROWS, COLS), np.uint8) for _ in range(3)]
    tumour[1][1, 4] = 255
    _series(patient / "PATIENT_DICOM", hu, image=True)
    _series(patient / "MASKS_DICOM" / "liver", liver, image=False)
    _series(patient / "MASKS_DICOM" / "livertumor01", tumour, image=False)
    # patient 2: the same pixels stored with RescaleSlope 0.5 (HU = 0.5 * stored - 1024)
    second = root / "3Dircadb1.2"
    _series(second / "PATIENT_DICOM", hu, image=True, slope=0.5)
    _series(second / "MASKS_DICOM" / "liver", liver, image=False)
    return root


def test_non_square_pixels_give_column_spacing_to_the_column_axis(patient_root):
    case = open_dataset(patient_root).load("3Dircadb1.1")
    assert case.image.shape == (COLS, ROWS, 3)  # (Columns, Rows, Slices)
    assert tuple(case.spacing) == pytest.approx((COL_SPACING, ROW_SPACING, 2.5))
    # RAS+ affine: LPS x and y negated; column i steps 0.8 mm along x, row j 0.5 mm along y
    expected = np.array(
        [
            [-0.8, 0.0, 0.0, 20.0],
            [0.0, -0.5, 0.0, -30.0],
            [0.0, 0.0, 2.5, 10.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    np.testing.assert_allclose(case.affine, expected, atol=1e-9)
    # array[i, j, k] is column i, row j of slice k
    assert case.image[4, 1, 2] == 100 * 1 + 4 + 1000 * 2
    assert case.label[4, 1, 1] == 2 and case.label.sum() == ROWS * COLS + 1


def test_surface_distances_use_the_right_pixel_size_per_axis(patient_root):
    """A one-voxel tumour moved by 2 columns is 1.6 mm away; by 2 rows 1.0 mm."""
    case = open_dataset(patient_root).load("3Dircadb1.1")
    ref = case.label == 2
    by_columns = np.roll(ref, -2, axis=0)  # column 4 -> 2
    by_rows = np.roll(ref, 2, axis=1)  # row 1 -> 3
    assert assd(by_columns, ref, case.spacing) == pytest.approx(2 * COL_SPACING)
    assert assd(by_rows, ref, case.spacing) == pytest.approx(2 * ROW_SPACING)


def test_rescale_slope_scales_the_stored_values(patient_root):
    case = open_dataset(patient_root).load("3Dircadb1.2")
    assert case.image.dtype == np.float32
    stored = 100 * 1 + 4 + 1000 * 2 + 1024  # column 4, row 1, slice 2
    assert case.image[4, 1, 2] == pytest.approx(0.5 * stored - 1024)
