"""Overlap: planted 3DIRCADb copies of LiTS cases are found from the data, nothing else is."""

from __future__ import annotations

import json

import numpy as np

from e2net_eval.data import find_overlap, open_dataset, write_phantom
from e2net_eval.data.anatomy import phantom_case
from e2net_eval.data.nifti import write_nifti
from e2net_eval.data.phantom import PhantomSpec
from tests.helpers.phantom_data import SIZE, SLICES, canonical


def test_overlap_finds_planted_copies(layout_phantoms, run_cli, tmp_path):
    """LiTS 8 cases (case 2 with a 1x1x1 mm header); 3DIRCADb copies of 2, 1 (x-flipped), 5."""
    out = tmp_path / "ov.json"
    code, stdout, err = run_cli(
        "datasets", "overlap", layout_phantoms / "lits", layout_phantoms / "ircadb_zip", "-o", out
    )
    assert code == 0, err
    matches = json.loads(out.read_text())["matches"]
    pairs = {(m["lits"], m["ircadb"]) for m in matches}
    assert pairs == {("2", "3Dircadb1.1"), ("1", "3Dircadb1.2"), ("5", "3Dircadb1.3")}
    assert all(m["score"] > 0.99 for m in matches)
    assert any(m["candidates"] > 1 for m in matches)  # shape alone did not decide
    assert "3 of 3" in stdout
    code, stdout, err = run_cli(
        "datasets", "split", layout_phantoms / "lits", "--seed", "0", "--exclude-overlap", out
    )
    split = json.loads(stdout)
    assert code == 0 and split["exclude"] == ["1", "2", "5"]
    assert not {"1", "2", "5"} & set(split["train"] + split["validation"])


def test_overlap_with_z_flip_and_unlabelled_flip(tmp_path):
    """A z-flipped generator case via DICOM, and a LiTS copy flipped without its affine saying so."""
    seed = 0
    # a case the generator stores z-flipped (which one depends on the generator's draws)
    zi = next(i for i in (0, 1, 2, 5) if phantom_case(seed, i, SIZE, SLICES).flips[2])
    indices = [zi, 3, 4]
    write_phantom(
        tmp_path / "irc",
        PhantomSpec("ircadb", seed=seed, indices=indices, size=SIZE, slices=SLICES),
    )
    lits = tmp_path / "lits"
    write_phantom(
        lits, PhantomSpec("lits", 6, seed=seed, size=SIZE, slices=SLICES, unit_spacing=[zi])
    )
    # Case 3: the voxels reversed along x, the affine left as it was (a wrong header).
    c3 = phantom_case(seed, 3, SIZE, SLICES)
    write_nifti(lits / "volume-3.nii", np.ascontiguousarray(c3.image[::-1]), c3.affine)
    write_nifti(lits / "segmentation-3.nii", np.ascontiguousarray(c3.label[::-1]), c3.affine)
    irc = open_dataset(tmp_path / "irc")
    reversed_cases = 0
    for cid, index in zip(irc.case_ids(), indices, strict=True):
        case, ref = irc.load(cid), phantom_case(seed, index, SIZE, SLICES)
        lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ref.affine
        along_normal = lps[:3, 2] @ np.cross(lps[:3, 0], lps[:3, 1]) > 0
        reversed_cases += not along_normal
        expected = ref.image if along_normal else ref.image[:, :, ::-1]
        assert np.array_equal(case.image, expected)  # slices ascend along the normal
        assert np.array_equal(canonical(case.label, case.affine), canonical(ref.label, ref.affine))
    assert reversed_cases >= 1
    matches = find_overlap(open_dataset(lits), irc)
    got = {(m["lits"], m["ircadb"]): m for m in matches}
    assert set(got) == {(str(zi), "3Dircadb1.1"), ("3", "3Dircadb1.2"), ("4", "3Dircadb1.3")}
    assert "flip x" in got["3", "3Dircadb1.2"]["orientation"]


def test_no_false_matches(layout_phantoms, tmp_path):
    """Different cases with identical shapes are never matched."""
    write_phantom(
        tmp_path / "irc",
        PhantomSpec("ircadb", seed=99, indices=[0, 1, 2, 3], size=SIZE, slices=SLICES),
    )
    assert (
        find_overlap(open_dataset(layout_phantoms / "lits"), open_dataset(tmp_path / "irc")) == []
    )
