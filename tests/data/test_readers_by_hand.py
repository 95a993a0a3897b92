"""Reader details the phantom round trips cannot see, on files written here by hand: a
NIfTI intercept (D03), spacing of a rotated affine from its columns (D12), and the
overlap's one-to-one assignment (D13; tools/mutate.py names)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from e2net_eval.data import open_dataset
from e2net_eval.data import overlap as overlap_mod
from e2net_eval.data.nifti import read_image

# axis i runs along y at 0.8 mm, axis j along x at 0.5 mm, axis k along z at 2.5 mm:
# column norms (0.8, 0.5, 2.5), row norms (0.5, 0.8, 2.5)
ROTATED = np.array(
    [[0.0, 0.5, 0.0, 1.0], [0.8, 0.0, 0.0, 2.0], [0.0, 0.0, 2.5, 3.0], [0.0, 0.0, 0.0, 1.0]]
)


def test_nifti_intercept_is_added_to_integer_images(tmp_path):
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4) * 100
    img = nib.Nifti1Image(raw, np.eye(4))
    img.header.set_slope_inter(1.0, -1024.0)
    nib.save(img, str(tmp_path / "ct.nii"))
    image, _, _ = read_image(tmp_path / "ct.nii")
    assert image.dtype == np.int16
    np.testing.assert_array_equal(image, raw.astype(np.int32) - 1024)


def test_spacing_of_a_rotated_affine_comes_from_its_columns(tmp_path):
    root = tmp_path / "lits"
    root.mkdir()
    label = np.zeros((4, 5, 3), np.uint8)
    for name, arr in (("volume-0.nii", label.astype(np.int16)), ("segmentation-0.nii", label)):
        nib.save(nib.Nifti1Image(arr, ROTATED), str(root / name))
    ds = open_dataset(root)
    header_only = ds.load("0", image=False, label=False)
    assert tuple(header_only.spacing) == pytest.approx((0.8, 0.5, 2.5))
    assert tuple(ds.load("0").spacing) == pytest.approx((0.8, 0.5, 2.5))


class _ScoredSet:
    """A dataset stand-in for `find_overlap`: ids, one shape, an image that is its id."""

    def __init__(self, layout: str, ids: list[str]):
        self.layout, self.ids = layout, ids

    def case_ids(self) -> list[str]:
        return list(self.ids)

    def header(self, cid):
        return (4, 4, 2), np.eye(4)

    def load(self, cid, label=True):
        class _Case:
            image, affine = cid, np.eye(4)

        return _Case()


def test_each_3dircadb_patient_matches_at_most_one_lits_case(monkeypatch):
    """Greedy, best first, one-to-one: volume 1 takes patient A (0.99); volume 2 scores
    0.98 with A too but A is taken, and 0.95 with B: so 2 <-> B. Volume 3 scores 0.97
    with A only: unmatched."""
    scores = {("A", "1"): 0.99, ("A", "2"): 0.98, ("B", "2"): 0.95, ("A", "3"): 0.97}
    monkeypatch.setattr(overlap_mod, "fingerprint", lambda image, affine: image)
    monkeypatch.setattr(
        overlap_mod,
        "match_score",
        lambda i, lc, transpose=None: (scores.get((i, lc), 0.1), "same"),
    )
    lits, ircadb = _ScoredSet("lits", ["1", "2", "3"]), _ScoredSet("ircadb", ["A", "B"])
    found = {m["lits"]: m["ircadb"] for m in overlap_mod.find_overlap(lits, ircadb)}
    assert found == {"1": "A", "2": "B"}
