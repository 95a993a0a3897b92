"""Issue 19, items S3, W3-W6, C1-C6, M1, M2: names escaped in every format, a gate that
refuses to compare what is not comparable, no prediction claimed twice, no impossible
value in a comparison, one line where one line was promised."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.helpers.reliability import REPO, one_error_line

CI_BASELINE = REPO / "leaderboards" / "ci-baseline"


@pytest.fixture(scope="module")
def preds(tmp_path_factory):
    """Perfect predictions of the 3-case LiTS phantom (`data` is session scoped)."""
    from e2net_eval.data import write_phantom
    from e2net_eval.data.phantom import PhantomSpec
    from tests.helpers.reliability import KW

    root = tmp_path_factory.mktemp("trust_b")
    write_phantom(root / "lits", PhantomSpec("lits", 3, **KW))
    pred = root / "pred"
    pred.mkdir()
    for seg in (root / "lits").glob("segmentation-*.nii"):
        shutil.copy(seg, pred / seg.name)
    return root / "lits", pred


@pytest.fixture(scope="module")
def full_eval(preds, tmp_path_factory):
    """`evaluate` of the 3 cases -> its output folder."""
    from e2net_eval.cli import main

    ref, pred = preds
    out = tmp_path_factory.mktemp("full") / "ev"
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(pred), str(ref), "-o", str(out), "--no-progress"])
    assert exc.value.code == 0
    return out


def _evaluate(run_cli, preds, out, *extra):
    ref, pred = preds
    code, _, err = run_cli("evaluate", pred, ref, "-o", out, "--no-progress", *extra)
    assert code == 0, err
    return out / "summary.json"


# -- W3: the gate compares like with like ----------------------------------------------------
def test_w3_regress_refuses_a_different_case_set(preds, full_eval, tmp_path, run_cli):
    one = _evaluate(run_cli, preds, tmp_path / "one", "--case", "0")
    code, out, err = run_cli("regress", one, full_eval / "summary.json")
    assert code == 2, (out, err)
    line = one_error_line(err, str(one), "cases differ", "CURRENT 1, BASELINE 3")
    assert "2 missing from CURRENT: 1, 2" in line, line
    assert "--allow-mixed" in line
    # said to be intended: gated, and what differs is printed
    code, out, err = run_cli("regress", one, full_eval / "summary.json", "--allow-mixed")
    assert code == 0, (out, err)
    assert "note: gated anyway (--allow-mixed):" in out and "cases differ" in out


def test_w3_regress_refuses_other_reference_labels(full_eval, tmp_path, run_cli):
    summary = json.loads((full_eval / "summary.json").read_text())
    summary["metric_per_case"][1]["tumour"]["ref_voxels"] += 7
    other = tmp_path / "other.json"
    other.write_text(json.dumps(summary))
    code, out, err = run_cli("regress", other, full_eval / "summary.json")
    assert code == 2, (out, err)
    one_error_line(err, "other.json", "reference labels differ in 1 case(s): 1")


def test_w3_regress_refuses_another_protocol_or_scoring(preds, full_eval, tmp_path, run_cli):
    base = full_eval / "summary.json"
    proto = _evaluate(run_cli, preds, tmp_path / "proto", "--protocol", "leaky")
    code, out, err = run_cli("regress", proto, base)
    assert code == 2, (out, err)
    one_error_line(err, "protocol differs", "'leaky'")
    nsd = _evaluate(run_cli, preds, tmp_path / "nsd", "--nsd-tolerance", "5")
    code, out, err = run_cli("regress", nsd, base)
    assert code == 2, (out, err)
    one_error_line(err, "scoring options differ", "nsd_tolerance_mm")


def test_w3_regress_checks_every_summary_of_a_run_folder(tmp_path, run_cli):
    run = tmp_path / "run"
    shutil.copytree(CI_BASELINE, run)
    summary_path = run / "eval" / "ircadb" / "edge" / "summary.json"
    summary = json.loads(summary_path.read_text())
    dropped = summary["metric_per_case"].pop()["case"]
    summary["n_cases"] -= 1
    summary_path.write_text(json.dumps(summary))
    code, out, err = run_cli("regress", run, CI_BASELINE)
    assert code == 2, (out, err)
    one_error_line(err, str(summary_path), f"1 missing from CURRENT: {dropped}")
    # the committed baselines stay comparable with each other (same phantom reference)
    code, out, err = run_cli("regress", CI_BASELINE, REPO / "leaderboards" / "phantom-baseline")
    assert code in (0, 1), (out, err)


# -- W4: no tolerance switches the gate off ---------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ("--default-tolerance", "nan"),
        ("--default-tolerance", "inf"),
        ("--default-tolerance", "-1"),
        ("--tolerance", "*.dice_per_case=nan"),
        ("--tolerance", "tumour.assd=inf"),
        ("--tolerance", "tumour.assd=-0.5"),
    ],
)
def test_w4_regress_refuses_non_finite_or_negative_tolerances(tmp_path, run_cli, args):
    base = CI_BASELINE / "eval" / "ircadb" / "edge" / "summary.json"
    worse = json.loads(base.read_text())
    worse["regions"]["tumour"]["dice_per_case"] = 0.0
    worse["regions"]["tumour"]["assd"]["mean"] = 99.0
    cur = tmp_path / "worse.json"
    cur.write_text(json.dumps(worse))
    code, out, err = run_cli("regress", cur, base, *args)
    assert code == 2, (out, err)
    one_error_line(err, "tolerance", "finite number >= 0")


# -- C4: JSON no parser should choke on --------------------------------------------------------
def _deep(text: str) -> str:
    return '{"regions": ' + "[" * 100_000 + "]" * 100_000 + "}"


def _huge_int(text: str) -> str:
    return text.replace('"dice_per_case": 0.', '"dice_per_case": ' + "9" * 400 + ', "x": 0.', 1)


@pytest.mark.parametrize("damage", [_deep, _huge_int])
def test_c4_regress_on_deep_or_huge_json_is_one_line(tmp_path, run_cli, damage):
    base = CI_BASELINE / "eval" / "ircadb" / "edge" / "summary.json"
    bad = tmp_path / "bad.json"
    bad.write_text(damage(base.read_text()))
    for cur, ref in ((bad, base), (base, bad)):
        code, out, err = run_cli("regress", cur, ref)
        assert code == 2, (out, err[-2000:])
        one_error_line(err, "bad.json")


# -- W5: one prediction file, one case -------------------------------------------------------
def _labels(preds, folder, *names):
    """A plain folder of reference labels named `names` (copies of the phantom's)."""
    ref, _ = preds
    folder.mkdir()
    segs = sorted(ref.glob("segmentation-*.nii"))
    for name, seg in zip(names, segs, strict=False):
        shutil.copy(seg, folder / name)
    return folder


def test_w5_the_exact_name_wins_over_a_looser_stem(preds, tmp_path, run_cli):
    ref = _labels(preds, tmp_path / "ref", "3.nii", "liver_3.nii")
    pred = tmp_path / "pred"
    pred.mkdir()
    shutil.copy(ref / "liver_3.nii", pred / "liver_3.nii")
    code, out, err = run_cli("evaluate", pred, ref, "-o", tmp_path / "ev", "--no-progress")
    assert code == 2, (out, err)
    one_error_line(err, "no prediction file for 1 case(s): 3 ")
    assert not (tmp_path / "ev").exists()
    # scored as empty when allowed: never against liver_3's prediction
    code, out, err = run_cli(
        "evaluate", pred, ref, "-o", tmp_path / "ev", "--no-progress", "--allow-missing"
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["missing_predictions"] == ["3"]
    by_case = {c["case"]: c for c in summary["metric_per_case"]}
    assert by_case["3"]["liver"]["dice"] == 0.0 and by_case["liver_3"]["liver"]["dice"] == 1.0
    # both files there: each case gets its own (the loose stem no longer makes two candidates)
    shutil.copy(ref / "3.nii", pred / "3.nii")
    code, out, err = run_cli("evaluate", pred, ref, "-o", tmp_path / "ev2", "--no-progress")
    assert code == 0, err


def test_w5_a_file_two_cases_claim_equally_is_an_error(preds, tmp_path, run_cli):
    ref = _labels(preds, tmp_path / "ref", "3.nii", "3_seg.nii")
    pred = tmp_path / "pred"
    pred.mkdir()
    # case 3 by MONAI's <stem>_seg with stem liver_3, case 3_seg by liver_<id>
    shutil.copy(ref / "3.nii", pred / "liver_3_seg.nii")
    code, out, err = run_cli("evaluate", pred, ref, "-o", tmp_path / "ev", "--no-progress")
    assert code == 2, (out, err)
    one_error_line(err, "liver_3_seg.nii", "case 3 ", "case 3_seg")


# -- W6: compare takes no impossible value, and the CSV agrees with the summary ---------------
def _edit_csv(folder, case, region, column, value):
    import csv

    path = folder / "per_case.csv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        if row["case"] == case and row["region"] == region:
            row[column] = value
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize(
    ("column", "value", "needle"),
    [
        ("dice", "5.0", "liver dice is 5.0, outside its range [0, 1]"),
        ("assd", "inf", "liver assd is inf, not a finite number"),
        ("rvd", "-3", "liver rvd is -3.0, outside its range [-1, inf]"),
        ("dice", "nan", "liver dice is nan here but 1.0 in summary.json"),
        ("dice", "0.5", "liver dice is 0.5 here but 1.0 in summary.json"),
    ],
)
def test_w6_compare_refuses_impossible_or_disagreeing_per_case_values(
    full_eval, tmp_path, run_cli, column, value, needle
):
    bad = tmp_path / "bad"
    shutil.copytree(full_eval, bad)
    _edit_csv(bad, "1", "liver", column, value)
    out_dir = tmp_path / "cmp"
    code, out, err = run_cli("compare", f"a={full_eval}", f"b={bad}", "-o", out_dir)
    assert code == 2, (out, err)
    one_error_line(err, str(bad / "per_case.csv"), "case 1", needle)
    assert not out_dir.exists()


def test_w6_compare_refuses_a_summary_whose_mean_is_not_its_cases(full_eval, tmp_path, run_cli):
    bad = tmp_path / "bad"
    shutil.copytree(full_eval, bad)
    summary = json.loads((bad / "summary.json").read_text())
    summary["regions"]["liver"]["dice_per_case"] = 0.9
    (bad / "summary.json").write_text(json.dumps(summary))
    code, out, err = run_cli("compare", f"a={full_eval}", f"b={bad}", "-o", tmp_path / "cmp")
    assert code == 2, (out, err)
    one_error_line(err, "summary.json", "regions.liver.dice_per_case is 0.9")
    summary["regions"]["liver"]["dice_per_case"] = 1.5
    (bad / "summary.json").write_text(json.dumps(summary))
    code, out, err = run_cli("compare", f"a={full_eval}", f"b={bad}", "-o", tmp_path / "cmp")
    assert code == 2, (out, err)
    one_error_line(err, "summary.json", "dice_per_case is 1.5, outside its range [0, 1]")


# -- C5: malformed metric_per_case items, a duplicated CSV row ---------------------------------
def _item_not_object(s):
    s["metric_per_case"][1] = ["1", 0.5]
    return "metric_per_case[1]"


def _region_not_object(s):
    s["metric_per_case"][1]["liver"] = 0.5
    return "case 1"


def _lesions_not_object(s):
    s["metric_per_case"][1]["lesions"]["any_overlap"] = [1]
    return "lesions.any_overlap"


def _case_twice(s):
    s["metric_per_case"][2]["case"] = "1"
    return "case 1"


@pytest.mark.parametrize(
    "damage", [_item_not_object, _region_not_object, _lesions_not_object, _case_twice]
)
def test_c5_compare_on_malformed_metric_per_case_is_one_line(full_eval, tmp_path, run_cli, damage):
    bad = tmp_path / "bad"
    bad.mkdir()
    summary = json.loads((full_eval / "summary.json").read_text())
    needle = damage(summary)
    (bad / "summary.json").write_text(json.dumps(summary))
    code, out, err = run_cli("compare", f"a={full_eval}", f"b={bad}", "-o", tmp_path / "cmp")
    assert code == 2, (out, err)
    one_error_line(err, "summary.json", needle)


def test_c5_compare_on_a_duplicated_csv_row_is_one_line(full_eval, tmp_path, run_cli):
    bad = tmp_path / "bad"
    shutil.copytree(full_eval, bad)
    lines = (bad / "per_case.csv").read_text().splitlines(keepends=True)
    (bad / "per_case.csv").write_text("".join([*lines, lines[1]]))
    code, out, err = run_cli("compare", f"a={full_eval}", f"b={bad}", "-o", tmp_path / "cmp")
    assert code == 2, (out, err)
    one_error_line(err, "per_case.csv", "case 0", "listed twice")


# -- S3, C6: names are data in every format ---------------------------------------------------
NASTY_CASES = ["=1+2", "<script>x|y", "NA", "-3", "@SUM(A1)", "'=z"]
NASTY_NAME = "<script>alert(1)</script>|`x`*[a](b)"
FORMULA_NAME = "@SUM(1+1)*cmd|' /C calc'!A0"
MATH_NAME = r"$\x{..}$"
PROTOCOL = "p|<b>\n=HYPERLINK(1)"


@pytest.fixture(scope="module")
def nasty_eval(preds, tmp_path_factory):
    """`evaluate` of a labels folder whose case ids are formulas and HTML, with a protocol
    holding a newline, a pipe and a formula."""
    from e2net_eval.cli import main

    ref_lits, _ = preds
    root = tmp_path_factory.mktemp("nasty")
    ref, pred = root / "ref", root / "pred"
    ref.mkdir()
    pred.mkdir()
    segs = sorted(ref_lits.glob("segmentation-*.nii"))
    for i, case in enumerate(NASTY_CASES):
        shutil.copy(segs[i % len(segs)], ref / f"{case}.nii")
        shutil.copy(segs[i % len(segs)], pred / f"{case}.nii")
    out = root / "ev"
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(pred), str(ref), "-o", str(out), "--no-progress",
              "--protocol", PROTOCOL])  # fmt: skip
    assert exc.value.code == 0
    return out


_GUARDED = ("=", "+", "-", "@", "\t", "\r")


def _unguarded_cells(path) -> list[str]:
    """CSV cells a spreadsheet would run as a formula (text starting with = + - @ tab CR)."""
    import csv
    import re

    number = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|nan)", re.I)
    with open(path, newline="", encoding="utf-8") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    return [c for c in cells if c.startswith(_GUARDED) and not number.fullmatch(c)]


def test_s3_per_case_csv_guards_case_ids_and_reads_them_back(nasty_eval):
    from e2net_eval.scores import read_evaluation, read_per_case

    assert _unguarded_cells(nasty_eval / "per_case.csv") == []
    text = (nasty_eval / "per_case.csv").read_text()
    assert "\n'=1+2," in text and "\n'@SUM(A1)," in text and "\n-3," in text
    frame = read_per_case(nasty_eval)
    assert sorted(set(frame["case"])) == sorted(NASTY_CASES)  # guarded ids round-trip
    ev = read_evaluation(nasty_eval)  # and agree with summary.json's
    assert sorted(ev.case_ids()) == sorted(NASTY_CASES)


def _unescaped(md: str, ch: str) -> int:
    import re

    return len(re.findall(r"(?<!\\)" + re.escape(ch), md))


def _check_compare_output(out) -> None:
    md = (out / "report.md").read_text()
    assert _unescaped(md, "<") == 0 and _unescaped(md, "`") == 0
    lines = md.splitlines()
    assert all(ln[:1] in ("", "#", "-", "|", "!", "*") for ln in lines), [
        ln for ln in lines if ln[:1] not in ("", "#", "-", "|", "!", "*")
    ]
    header_cells = None  # every table row has as many cells as its header
    for ln in lines:
        if not ln.startswith("|"):
            header_cells = None
            continue
        cells = _unescaped(ln, "|")
        header_cells = header_cells or cells
        assert cells == header_cells, ln
    assert _unguarded_cells(out / "tables.csv") == []


def test_s3_compare_escapes_names_in_markdown_and_csv(full_eval, tmp_path, run_cli):
    out = tmp_path / "cmp"
    code, stdout, err = run_cli(
        "compare", f"{NASTY_NAME}={full_eval}", f"{FORMULA_NAME}={full_eval}",
        f"a\nb={full_eval}", "-o", out,
    )  # fmt: skip
    assert code == 0, (stdout, err)
    _check_compare_output(out)
    assert "\\<script\\>" in (out / "report.md").read_text()
    assert "'" + FORMULA_NAME in (out / "tables.csv").read_text()


def test_c6_compare_draws_a_name_that_looks_like_mathtext(full_eval, tmp_path, run_cli):
    out = tmp_path / "cmp"
    code, stdout, err = run_cli("compare", f"{MATH_NAME}={full_eval}", f"b={full_eval}", "-o", out)
    assert code == 0, (stdout, err)
    assert (out / "figures" / "dice.png").is_file()


def test_s3_compare_of_case_ids_that_are_formulas_html_or_na(nasty_eval, tmp_path, run_cli):
    out = tmp_path / "cmp"
    code, stdout, err = run_cli("compare", f"a={nasty_eval}", f"b={nasty_eval}", "-o", out)
    assert code == 0, (stdout, err)
    _check_compare_output(out)


# -- C1: a case file name that is not UTF-8 ---------------------------------------------------
def test_c1_a_non_utf8_case_name_is_refused_before_scoring(preds, tmp_path):
    import os

    from tests.helpers.reliability import run_proc

    ref_lits, pred_lits = preds
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    ref.mkdir()
    pred.mkdir()
    seg = pred_lits / "segmentation-0.nii"
    for folder in (ref, pred):
        shutil.copy(seg, os.path.join(os.fsencode(folder), b"a\xff.nii"))
        shutil.copy(seg, folder / "b.nii")
    res = run_proc("evaluate", pred, ref, "-o", tmp_path / "ev", "--no-progress",
                   fault="evaluate.case:raise")  # fmt: skip
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, str(ref), "a\\xff", "not valid UTF-8")  # before any case
    assert not (tmp_path / "ev").exists()


# -- C2: a full disk or a file size limit -------------------------------------------------------
def _limited(limit: int, *args):
    """The CLI in a subprocess whose files may not grow beyond `limit` bytes (SIGXFSZ
    ignored, so a write fails with EFBIG as on a full disk)."""
    import resource
    import signal
    import subprocess
    import tempfile

    from tests.helpers.reliability import cli_cmd, env

    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        cli_cmd(*args), env=env(), capture_output=True, text=True, timeout=600,
        cwd=tempfile.gettempdir(), preexec_fn=limit_files,
    )  # fmt: skip


def test_c2_evaluate_convert_compare_out_of_room_leave_nothing(preds, full_eval, tmp_path):
    ref, pred = preds
    runs = [
        (1500, "ev", ("evaluate", pred, ref, "--no-progress")),
        (5000, "conv", ("datasets", "convert", ref)),
        (3000, "cmp", ("compare", f"a={full_eval}", f"b={full_eval}")),
    ]
    for limit, name, args in runs:
        out = tmp_path / name
        if name == "conv":
            res = _limited(limit, *args, out)
        else:
            res = _limited(limit, *args, "-o", out)
        assert res.returncode == 2, (name, res.stderr[-3000:])
        one_error_line(res.stderr, f"{out}:", "file too large")
        assert sorted(p.name for p in tmp_path.iterdir()) == [], name  # nothing, no temporary


# -- C3: a single-file output into a place that cannot be written ------------------------------
def test_c3_single_file_outputs_into_an_unwritable_place(data, tmp_path):
    import os

    from tests.helpers.reliability import run_proc

    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o555)
    base = CI_BASELINE / "eval" / "ircadb" / "edge" / "summary.json"
    commands = [
        ("regress", base, base, "--json", locked / "d.json"),
        ("datasets", "check", data / "lits", "--json", locked / "c.json"),
        ("datasets", "split", data / "lits", "--seed", "0", "-o", locked / "s.json"),
        ("datasets", "overlap", data / "lits", data / "ircadb", "-o", locked / "o.json"),
        ("regress", base, base, "--json", locked / "sub" / "d.json"),
    ]
    try:
        for args in commands:
            res = run_proc(*args, obey_modes=True)
            assert res.returncode == 2, (args, res.stdout[-500:], res.stderr[-3000:])
            one_error_line(res.stderr, str(args[-1]), "permission denied")
        assert list(locked.iterdir()) == []
    finally:
        os.chmod(locked, 0o755)


# -- M2: a closed pipe is not a regression ----------------------------------------------------
def test_m2_regress_into_a_closed_pipe_exits_141_never_1():
    import subprocess
    import tempfile

    from tests.helpers.reliability import cli_cmd, env

    proc = subprocess.Popen(
        cli_cmd("regress", CI_BASELINE, CI_BASELINE), env=env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, cwd=tempfile.gettempdir(),
    )  # fmt: skip
    proc.stdout.close()  # the reader is gone before the first line (`| head -0`)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=600) == 141, err
    assert "Traceback" not in err and "regression" not in err, err


# -- M1: library log records and warnings stay out of the one line ---------------------------
def _sform_code_7(src, dst):
    import struct

    shutil.copy(src, dst)
    with open(dst, "r+b") as fh:  # nibabel logs "sform_code 7 not valid; setting to 0"
        fh.seek(254)
        fh.write(struct.pack("<h", 7))


def test_m1_nibabel_records_are_silent_unless_verbose(preds, tmp_path):
    from tests.helpers.reliability import run_proc

    ref_lits, pred_lits = preds
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    ref.mkdir()
    pred.mkdir()
    _sform_code_7(pred_lits / "segmentation-0.nii", ref / "a.nii")
    _sform_code_7(pred_lits / "segmentation-0.nii", pred / "a.nii")
    res = run_proc("evaluate", pred, ref, "-o", tmp_path / "ok", "--no-progress")
    assert res.returncode == 0 and res.stderr == "", res.stderr
    res = run_proc("-v", "evaluate", pred, ref, "-o", tmp_path / "v", "--no-progress")
    assert res.returncode == 0, res.stderr
    said = [ln for ln in res.stderr.splitlines() if "sform_code 7 not valid" in ln]
    assert len(said) == 2, res.stderr  # once per file read (reference, prediction), not twice
    # a refused case: one line, whatever nibabel said while reading it
    shutil.copy(pred_lits / "segmentation-1.nii", ref / "b.nii")
    _sform_code_7(pred_lits / "segmentation-1.nii", pred / "b.nii")
    (pred / "a.nii").unlink()
    shutil.copy(ref_lits / "volume-0.nii", pred / "a.nii")  # a CT volume: label values refused
    res = run_proc("evaluate", pred, ref, "-o", tmp_path / "bad", "--no-progress")
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, "a.nii")


def test_w6_regress_refuses_a_metric_outside_its_range(tmp_path, run_cli):
    base = CI_BASELINE / "eval" / "ircadb" / "edge" / "summary.json"
    summary = json.loads(base.read_text())
    summary["regions"]["tumour"]["dice_per_case"] = 5.0  # would pass any gate
    cur = tmp_path / "cur.json"
    cur.write_text(json.dumps(summary))
    code, out, err = run_cli("regress", cur, base)
    assert code == 2, (out, err)
    one_error_line(err, "cur.json", "tumour.dice_per_case", "outside its range [0, 1]")


def test_s3_an_error_line_never_carries_a_terminal_escape(preds, tmp_path, run_cli):
    ref_lits, pred_lits = preds
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    ref.mkdir()
    pred.mkdir()
    shutil.copy(pred_lits / "segmentation-0.nii", ref / "a\x1b[2J\x07.nii")  # clear screen, bell
    code, out, err = run_cli("evaluate", pred, ref, "-o", tmp_path / "ev", "--no-progress")
    assert code == 2, (out, err)
    line = one_error_line(err, "case a\\x1b[2J\\x07")
    assert "\x1b" not in line and "\x07" not in line


def test_m1_pydicom_warnings_are_silent_unless_verbose(data, tmp_path):
    import pydicom

    from tests.helpers.reliability import copy_of, run_proc

    root = copy_of(data, "ircadb", tmp_path / "ircadb")
    for path in (root / "3Dircadb1.1" / "PATIENT_DICOM").iterdir():
        ds = pydicom.dcmread(path)
        with pytest.warns(UserWarning, match="Invalid value for VR UI"):
            ds.SeriesInstanceUID = "1.2.3.abc"  # not a UID: pydicom warns when it is read
        ds.save_as(path)
    res = run_proc("datasets", "check", root)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    res = run_proc("-v", "datasets", "check", root)
    assert res.returncode == 0 and "Invalid value for VR UI" in res.stderr, res.stderr


def test_s3_regress_prints_metric_names_without_terminal_escapes(tmp_path, run_cli):
    base = json.loads((CI_BASELINE / "eval" / "ircadb" / "edge" / "summary.json").read_text())
    for summary, dice in ((base, 0.9), (json.loads(json.dumps(base)), 0.1)):
        summary["regions"]["liver\x1b[2J\nok"] = {"dice_per_case": dice}
    (tmp_path / "b.json").write_text(json.dumps(base))
    (tmp_path / "c.json").write_text(json.dumps(summary))
    code, out, err = run_cli("regress", tmp_path / "c.json", tmp_path / "b.json")
    assert code == 1, (out, err)
    assert "\x1b" not in out + err and "liver\\x1b[2J\\x0aok.dice_per_case" in out + err


def test_s3_log_lines_never_carry_a_terminal_escape(preds, tmp_path):
    from tests.helpers.reliability import run_proc

    ref_lits, pred_lits = preds
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    ref.mkdir()
    pred.mkdir()
    shutil.copy(pred_lits / "segmentation-0.nii", ref / "a\x1b[2J.nii")
    shutil.copy(pred_lits / "segmentation-1.nii", ref / "b.nii")
    shutil.copy(pred_lits / "segmentation-1.nii", pred / "b.nii")
    res = run_proc("evaluate", pred, ref, "-o", tmp_path / "ev", "--no-progress", "--allow-missing")
    assert res.returncode == 0, res.stderr
    assert "case a\\x1b[2J: no prediction, scored as empty" in res.stderr, res.stderr
    assert "\x1b" not in res.stderr + res.stdout


def test_w3_regress_refuses_other_labels_with_the_same_voxel_counts(preds, full_eval, tmp_path):
    import nibabel as nib
    import numpy as np

    from tests.helpers.reliability import run_proc

    ref, pred = preds
    other = tmp_path / "other_ref"
    shutil.copytree(ref, other)
    seg = other / "segmentation-1.nii"
    img = nib.load(seg)
    flipped = np.ascontiguousarray(np.flip(np.asarray(img.dataobj), axis=0))  # same counts
    seg.unlink()
    nib.save(nib.Nifti1Image(flipped, img.affine, img.header), seg)
    res = run_proc("evaluate", pred, other, "-o", tmp_path / "ev", "--no-progress")
    assert res.returncode == 0, res.stderr
    res = run_proc("regress", tmp_path / "ev", full_eval)
    assert res.returncode == 2, (res.stdout[-500:], res.stderr)
    one_error_line(res.stderr, "reference labels differ in 1 case(s): 1 ", "label digest")


def test_w3_compare_refuses_other_labels_with_the_same_voxel_counts(full_eval, tmp_path, run_cli):
    other = tmp_path / "other"
    shutil.copytree(full_eval, other)
    summary = json.loads((other / "summary.json").read_text())
    summary["metric_per_case"][1]["reference_sha256"] = "0" * 64
    (other / "summary.json").write_text(json.dumps(summary))
    code, out, err = run_cli("compare", f"a={full_eval}", f"b={other}", "-o", tmp_path / "c")
    assert code == 2, (out, err)
    one_error_line(err, "reference labels of case 1 differ", "--allow-mixed")
