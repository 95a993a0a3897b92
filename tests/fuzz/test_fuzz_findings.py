"""What the fuzzer found outside issue 19's list, each fixed at its root (these tests failed
before the fix), and checks that the oracle itself catches each kind of wrong outcome."""

from __future__ import annotations

import io
import json
import struct
import time
import zipfile

import numpy as np
import pytest

from tests.fuzz import fuzz_core
from tests.fuzz import fuzz_nifti as fn
from tests.fuzz.fuzz_core import REFUSE, SAME, Campaign, Mutant, Result, run_cli
from tests.fuzz.fuzz_run import judge


def one_error(res: Result, *needles: str) -> str:
    assert res.code == 2, res
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _lits(tmp_path, image: bytes | None = None, label: bytes | None = None):
    vols = fn.base_volumes()
    root = tmp_path / "lits"
    root.mkdir(parents=True)
    (root / "volume-7.nii").write_bytes(image or fn.encode(vols["image"], fn.AFFINE))
    (root / "segmentation-7.nii").write_bytes(label or fn.encode(vols["label"], fn.AFFINE))
    return root


def _with_float(data: bytes, offset: int, value: float) -> bytes:
    raw = bytearray(data)
    struct.pack_into("<f", raw, offset, value)
    return bytes(raw)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_an_affine_with_nan_or_infinity_is_refused(tmp_path, value):
    """Found by the fuzzer (srow_affine): a NaN translation passed `datasets check` and
    `convert` wrote it into the converted file, exit 0."""
    vols = fn.base_volumes()
    bad = _with_float(fn.encode(vols["image"], fn.AFFINE), 280 + 12, value)  # srow_x[3]
    bad_label = _with_float(fn.encode(vols["label"], fn.AFFINE), 280 + 12, value)
    root = _lits(tmp_path, bad, bad_label)
    one_error(run_cli("datasets", "check", root), "volume-7.nii", "affine", "NaN or infinit")
    one_error(run_cli("datasets", "convert", root, tmp_path / "out"), "volume-7.nii", "affine")
    assert not (tmp_path / "out").exists()


def test_an_image_label_mismatch_names_both_files(tmp_path):
    """Found by the fuzzer (dim, quatern): the error named only the label file, though the
    image may be the damaged one."""
    vols = fn.base_volumes()
    image = fn.encode(vols["image"][:, :, :5].copy(), fn.AFFINE)
    root = _lits(tmp_path, image=image)
    one_error(run_cli("datasets", "check", root), "segmentation-7.nii", "volume-7.nii")
    shifted = fn.AFFINE.copy()
    shifted[0, 3] += 5
    root2 = _lits(tmp_path / "b", image=fn.encode(vols["image"], shifted))
    one_error(run_cli("datasets", "convert", root2, tmp_path / "o"), "segmentation", "volume-7")


def _ircadb(tmp_path, zipped: bool):
    from e2net_eval.data import write_phantom
    from e2net_eval.data.phantom import PhantomSpec

    root = tmp_path / "ircadb"
    write_phantom(root, PhantomSpec("ircadb", 1, seed=4, size=16, slices=(5, 6), zipped=zipped))
    return root, root / "3Dircadb1.1"


def test_a_zip_member_held_twice_is_refused(tmp_path):
    """Found by the fuzzer (zip_dup_member): two members of one name, one silently won."""
    root, patient = _ircadb(tmp_path, zipped=True)
    archive = patient / "PATIENT_DICOM.zip"
    with zipfile.ZipFile(archive) as zf:
        members = [(i.filename, zf.read(i)) for i in zf.infolist()]
    name, blob = next(m for m in members if m[0].endswith("image_2"))
    buf = io.BytesIO()
    with pytest.warns(UserWarning, match="Duplicate"), zipfile.ZipFile(buf, "w") as zf:
        for n, b in [*members, (name, blob[:-2] + b"\0\0")]:
            zf.writestr(n, b)
    archive.write_bytes(buf.getvalue())
    line = one_error(run_cli("datasets", "check", root), f"PATIENT_DICOM.zip:{name}", "twice")
    assert "ambiguous" in line


def test_a_mask_image_mismatch_names_the_image_series(tmp_path):
    """Found by the fuzzer (dcm_remove): a missing first CT slice was reported against the
    liver mask alone."""
    root, patient = _ircadb(tmp_path, zipped=False)
    (patient / "PATIENT_DICOM" / "image_0").unlink()
    one_error(run_cli("datasets", "check", root), "MASKS_DICOM/liver", "PATIENT_DICOM)")


def test_a_json_key_given_twice_is_refused(tmp_path):
    """Found by the fuzzer (json_dup_key): the last of two values silently won in regress."""
    from e2net_eval.util.jsonio import loads_strict

    summary = {"n_cases": 1, "regions": {"liver": {"dice_per_case": 0.9}}}
    (tmp_path / "base.json").write_text(json.dumps(summary))
    text = json.dumps(summary).replace(
        '"dice_per_case": 0.9', '"dice_per_case": 0.9, "dice_per_case": 0.1'
    )
    (tmp_path / "summary.json").write_text(text)
    one_error(
        run_cli("regress", tmp_path / "summary.json", tmp_path / "base.json"),
        "summary.json",
        "twice",
    )
    with pytest.raises(ValueError, match="twice"):
        loads_strict('{"a": 1, "a": 1}')
    assert loads_strict('{"a": {"b": 1}, "b": 2}') == {"a": {"b": 1}, "b": 2}


# ---------------------------------------------------------------- the oracle catches...


def _judged(tmp_path, func, m: Mutant | None = None, expected=(0, "clean")):
    ins, outs = tmp_path / "in", tmp_path / "o"
    ins.mkdir(parents=True, exist_ok=True)
    outs.mkdir(parents=True, exist_ok=True)
    (ins / "x.nii").write_bytes(b"input")
    m = m or Mutant("nifti", "k", "", "in/x.nii", b"", expect=SAME)
    camp = Campaign(1, 1)
    judge(camp, m, "cmd", tmp_path, func, "ref", expected)
    return camp.records[0]


@pytest.mark.parametrize(
    "outcome, problem",
    [
        ((0, "", ""), None),
        ((2, "", "error: case 7: in/x.nii: bad\n"), None),
        ((0, "", ""), "values unlike"),  # other facts below
        ((2, "", "error: case 7: somewhere else: bad\n"), "names none"),
        ((2, "", "warning: x\nerror: in/x.nii: bad\n"), "not one `error:` line"),
        ((3, "", "Traceback ...\ninternal error: x\n"), "exit 3"),
        ((1, "", "regression: x\n"), "exit 1"),
        (("hang", "", ""), "exit hang"),
        ((0, "", "some warning\n"), "exit 0 with stderr"),
    ],
)
def test_the_oracle_flags_each_wrong_outcome(tmp_path, outcome, problem):
    facts = "other" if problem == "values unlike" else "clean"
    rec = _judged(tmp_path, lambda i, o, r: (Result(*outcome), facts))
    if problem is None:
        assert rec.verdict in ("equal", "refused") and not rec.problems
    else:
        assert rec.verdict == "FAIL" and any(problem in p for p in rec.problems), rec


def test_the_oracle_flags_changed_inputs_leftovers_and_refused_good_input(tmp_path):
    def touches_input(ins, outs, role):
        (ins / "x.nii").write_bytes(b"changed")
        return Result(0, "", ""), "clean"

    assert "an input changed" in _judged(tmp_path / "a", touches_input).problems

    def leaves_output(ins, outs, role):
        (outs / ".ev.1234.tmp").mkdir()
        return Result(2, "", "error: in/x.nii: bad\n"), None

    assert any("left behind" in p for p in _judged(tmp_path / "b", leaves_output).problems)

    def leaves_temporary(ins, outs, role):
        (outs / ".check.json.a1b2c3d4.tmp").write_text("{")
        return Result(0, "", ""), "clean"

    assert any("temporaries" in p for p in _judged(tmp_path / "e", leaves_temporary).problems)
    well_formed = Mutant("nifti", "k", "", "in/x.nii", b"", expect=SAME, must_read=True)
    refuses = lambda i, o, r: (Result(2, "", "error: in/x.nii: bad\n"), None)  # noqa: E731
    assert (
        "a well-formed input was refused" in _judged(tmp_path / "c", refuses, well_formed).problems
    )
    must_refuse = Mutant("nifti", "k", "", "in/x.nii", b"", expect=REFUSE)
    accepts = lambda i, o, r: (Result(0, "", ""), "clean")  # noqa: E731
    assert any(
        "must be refused" in p for p in _judged(tmp_path / "d", accepts, must_refuse).problems
    )


def test_a_hang_is_cut_off(monkeypatch):
    import e2net_eval.cli

    monkeypatch.setattr(fuzz_core, "RUN_TIMEOUT_S", 1)
    monkeypatch.setattr(e2net_eval.cli, "main", lambda argv: time.sleep(30))
    assert run_cli("evaluate").code == "hang"  # not 0: the alarm ended the 30-s sleep


def test_the_reference_reader_applies_the_spacing_rule():
    """pixdim unlike the affine, or not finite and positive: refused as "spacing" (W1)."""
    vols = fn.base_volumes()
    clean = fn.encode(vols["label"], fn.AFFINE)
    assert fn.reference_read(clean, "label") is not None
    for value in (1.0, 0.0, float("nan"), 1e12, 1e-30):
        assert fn.reference_read(_with_float(clean, 80, value), "label") == "spacing"
    values, affine, zooms = fn.reference_read(clean, "label")
    assert np.array_equal(values, vols["label"]) and np.allclose(zooms, (0.8, 0.75, 2.5))


def _set_everywhere(patient, tag: str, value: bytes | None, only: str | None = None) -> None:
    """Set `tag` to the raw `value` in every slice (or in the slice file `only`)."""
    import pydicom

    from tests.fuzz import fuzz_ircadb as fi

    for path in sorted(patient.rglob("image_*")):
        if only is None or path.relative_to(patient).as_posix() == only:
            ds = pydicom.dcmread(path, force=True)
            fi._set(ds, tag, value)
            path.write_bytes(fi._encode(ds))


@pytest.mark.parametrize(
    "tag, value, words",
    [
        ("PixelSpacing", b"0\\0", "PixelSpacing [0, 0] is not positive"),
        ("PixelSpacing", b"-1\\-1", "is not positive"),
        ("ImageOrientationPatient", b"2\\0\\0\\0\\2\\0", "not two orthogonal unit vectors"),
        ("ImageOrientationPatient", b"1\\0\\0\\1\\0\\0", "not two orthogonal unit vectors"),
        ("RescaleIntercept", b"1e309", "RescaleIntercept [1e309] is not 1 finite number(s)"),
        ("RescaleSlope", b"inf", "is not 1 finite number(s)"),
    ],
)
def test_a_dicom_geometry_or_rescale_that_cannot_be_is_refused(tmp_path, tag, value, words):
    """Found by the fuzzer (dcm_tag_all): the same impossible value in every slice of every
    series passed every cross-check: spacing 0 or -1 mm, a 2-mm "unit" vector (spacing x2),
    HU of infinity, all exit 0."""
    root, patient = _ircadb(tmp_path, zipped=False)
    _set_everywhere(patient, tag, value)
    one_error(run_cli("datasets", "check", root), "PATIENT_DICOM/image_0", words)
    assert run_cli("datasets", "convert", root, tmp_path / "out").code == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "value, words",
    [(b"1", "ImagePositionPatient [1] is not 3 finite number(s)"), (None, "other slices")],
)
def test_a_slice_with_a_damaged_position_is_named(tmp_path, value, words):
    """Found by the fuzzer (dcm_tag, dcm_flip_header): one slice without a usable
    ImagePositionPatient sent the whole series to the InstanceNumber fallback (origin 0:
    `convert` wrote another affine, exit 0), or failed as "matmul: ... 0 dimensions"."""
    root, patient = _ircadb(tmp_path, zipped=False)
    _set_everywhere(patient, "ImagePositionPatient", value, only="PATIENT_DICOM/image_2")
    one_error(run_cli("datasets", "check", root), "PATIENT_DICOM/image_2", words)
    assert run_cli("datasets", "convert", root, tmp_path / "out").code == 2


def _evaluation(tmp_path):
    """Two copies (a/, b/) of a clean three-case evaluation."""
    from tests.fuzz.fuzz_run import NiftiFamily, ResultsFamily

    clean = ResultsFamily(tmp_path / "work", NiftiFamily(tmp_path / "work")).clean
    for rel, data in clean.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    return tmp_path / "a", tmp_path / "b"


def test_regress_names_the_file_that_lacks_a_metric(tmp_path):
    """Found by the fuzzer (json_missing): "CURRENT lacks 1 metric(s)" named no file."""
    a, b = _evaluation(tmp_path)
    summary = json.loads((b / "summary.json").read_text())
    del summary["regions"]["liver"]["masd"]
    (b / "summary.json").write_text(json.dumps(summary))
    one_error(run_cli("regress", b, a), str(b / "summary.json"), "lacks 1 metric(s)", "masd")


def test_a_nul_byte_in_per_case_csv_is_refused(tmp_path):
    """Found by the fuzzer (csv_encoding): pandas ends a cell at a NUL byte, so compare
    printed other numbers, exit 0."""
    a, b = _evaluation(tmp_path)
    text = (b / "per_case.csv").read_bytes()
    pos = text.index(b"\n", text.index(b"\n") + 1) - 3  # inside the first row's last cells
    (b / "per_case.csv").write_bytes(text[:pos] + b"\0" + text[pos:])
    one_error(run_cli("compare", f"a={a}", f"b={b}", "-o", tmp_path / "cmp"), "per_case.csv", "NUL")
    assert not (tmp_path / "cmp").exists()


def _compare(tmp_path, a, b) -> Result:
    res = run_cli("compare", f"a={a}", f"b={b}", "-o", tmp_path / "cmp")
    assert not (tmp_path / "cmp").exists()
    return res


def _rows(path):
    return path.read_text().splitlines(keepends=True)


def test_a_cut_per_case_csv_is_refused_and_named(tmp_path):
    """Found by the fuzzer (csv_truncate, inputs 420 and 920): a cut last row was read with
    <NA> in its missing cells (exit 0, other values), and a cut that lost the last row gave
    a mean error that named only summary.json."""
    a, b = _evaluation(tmp_path)
    rows = _rows(b / "per_case.csv")
    keep = rows[0].split(",").index("pred_volume_ml")  # cut after a whole ref_volume_ml cell
    (b / "per_case.csv").write_text("".join(rows[:-1]) + ",".join(rows[-1].split(",")[:keep]))
    one_error(_compare(tmp_path, a, b), "per_case.csv", "case 3", "fewer than")
    (b / "per_case.csv").write_text("".join(rows[:-1]))  # the last row lost whole
    one_error(_compare(tmp_path, a, b), "per_case.csv", "no tumour row")


def test_a_per_case_csv_without_a_metric_column_is_refused(tmp_path):
    """Found by the fuzzer (csv_missing_column, inputs 666, 1642): without its assd or
    lesion_dice column per_case.csv was read and compare printed other values, exit 0."""
    a, b = _evaluation(tmp_path)
    text = (b / "per_case.csv").read_text()
    for column in ("assd", "lesion_dice"):
        table = [line.split(",") for line in text.splitlines()]
        i = table[0].index(column)
        (b / "per_case.csv").write_text("\n".join(",".join(r[:i] + r[i + 1 :]) for r in table))
        one_error(_compare(tmp_path, a, b), "per_case.csv", repr(column))


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [("burden_pred", "0.5", "burden_pred"), ("pred_voxels", "nan", "pred_voxels")]
    + [("tp_any", "inf", "tp_any")],
)
def test_a_bookkeeping_cell_unlike_summary_json_is_refused(tmp_path, column, value, words):
    """Found by the fuzzer (csv_value, inputs 1128, 2697, 3753): a changed burden or voxel
    count was read as is (exit 0, other values), and tp_any='inf' was exit 3 (OverflowError
    from pandas' Int64 conversion)."""
    a, b = _evaluation(tmp_path)
    table = [line.split(",") for line in (b / "per_case.csv").read_text().splitlines()]
    i = table[0].index(column)
    row = next(r for r in table[1:] if r[1] == "tumour" and r[i] not in ("", value))
    row[i] = value
    (b / "per_case.csv").write_text("\n".join(",".join(r) for r in table) + "\n")
    one_error(_compare(tmp_path, a, b), "per_case.csv", f"case {row[0]}", words)


def test_a_summary_metric_of_the_wrong_type_is_refused_by_compare(tmp_path):
    """Found by the fuzzer (json_type, input 4760): tumour_burden.max_abs_error={} was shown
    as n/a by compare, exit 0 (regress refused it; both now use `scores.check_types`)."""
    a, b = _evaluation(tmp_path)
    summary = json.loads((b / "summary.json").read_text())
    summary["tumour_burden"]["max_abs_error"] = {}
    (b / "summary.json").write_text(json.dumps(summary))
    one_error(_compare(tmp_path, a, b), "summary.json", "max_abs_error")
    one_error(run_cli("regress", b, a), "summary.json", "max_abs_error")
    summary["regions"]["liver"]["dice"]["mean"] = "0.9"  # inside a stats block
    summary["tumour_burden"]["max_abs_error"] = 0.1
    (b / "summary.json").write_text(json.dumps(summary))
    one_error(_compare(tmp_path, a, b), "summary.json", "liver.dice.mean")
