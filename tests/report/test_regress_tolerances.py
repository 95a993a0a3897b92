"""`regress --tolerance`: the documented pattern semantics (docs/reports.md, "regress") on
run folders, the last matching option winning, an exact zero tolerance and the burden's
maximum error gated. Each test is aimed at one bug the other tests let pass (R05, R06,
R08, R09 in tools/mutate.py)."""

from __future__ import annotations

import copy

from tests.helpers.report_fakes import fake_summary, write_summary

LIVER = [0.95, 0.96, 0.94, 0.97]
TUMOUR = [0.60, 0.70, 0.65, 0.80]
SUMMARY = "eval/lits_val/dist/summary.json"


def _runs(tmp_path, change) -> tuple:
    """A baseline run folder and a current one whose summary `change` edits in place."""
    base = fake_summary(LIVER, TUMOUR)
    cur = copy.deepcopy(base)
    change(cur)
    write_summary(tmp_path / "base" / SUMMARY, base)
    write_summary(tmp_path / "cur" / SUMMARY, cur)
    return tmp_path / "cur", tmp_path / "base"


def _assd_up(by: float):
    def change(summary: dict) -> None:
        summary["regions"]["tumour"]["assd"]["mean"] += by

    return change


def test_documented_metric_pattern_matches_inside_run_folders(tmp_path, run_cli):
    """R05: `--tolerance 'tumour.assd=0.5'` (the docs' example) applies to the key
    `eval/lits_val/dist/tumour.assd` of a run folder: its metric part matches."""
    cur, base = _runs(tmp_path, _assd_up(0.4))  # 2.0 mm -> 2.4 mm, within 0.5
    code, out, err = run_cli("regress", cur, base, "--tolerance", "tumour.assd=0.5")
    assert code == 0, out + err
    code, out, err = run_cli("regress", cur, base, "--tolerance", "tumour.assd=0.3")
    assert code == 1 and "eval/lits_val/dist/tumour.assd" in err


def test_a_full_key_pattern_still_matches(tmp_path, run_cli):
    cur, base = _runs(tmp_path, _assd_up(0.4))
    code, out, err = run_cli("regress", cur, base, "--tolerance", "eval/lits_val/*/tumour.*=0.5")
    assert code == 0, out + err
    code, _, _ = run_cli("regress", cur, base, "--tolerance", "eval/ircadb/*/tumour.*=0.5")
    assert code == 1


def test_the_last_matching_tolerance_wins(tmp_path, run_cli):
    """R06: a broad pattern then a narrow one: the narrow (last) one decides, both ways."""
    cur, base = _runs(tmp_path, _assd_up(0.4))
    code, out, err = run_cli(
        "regress", cur, base, "--tolerance", "tumour.*=0.1", "--tolerance", "tumour.assd=0.5"
    )
    assert code == 0, out + err
    code, _, err = run_cli(
        "regress", cur, base, "--tolerance", "tumour.assd=0.5", "--tolerance", "tumour.*=0.1"
    )
    assert code == 1 and "tumour.assd" in err


def test_zero_tolerance_allows_no_worsening_at_all(tmp_path, run_cli):
    """R08: 0 means 0: a tumour Dice 0.0005 lower fails with the default tolerance 0."""

    def lower(summary: dict) -> None:
        summary["regions"]["tumour"]["dice_per_case"] -= 0.0005

    cur, base = _runs(tmp_path, lower)
    code, out, err = run_cli("regress", cur, base)
    assert code == 1 and "tumour.dice_per_case" in err, out + err
    code, out, err = run_cli("regress", cur, base, "--default-tolerance", "0.0005")
    assert code == 0, out + err


def test_the_burden_maximum_error_is_gated(tmp_path, run_cli):
    """R09: `tumour_burden.max_abs_error` is a gated metric (lower is better)."""

    def worse_max(summary: dict) -> None:
        summary["tumour_burden"]["max_abs_error"] += 0.1

    cur, base = _runs(tmp_path, worse_max)
    code, out, err = run_cli("regress", cur, base)
    assert code == 1 and "tumour_burden.max_abs_error" in err, out + err
    line = next(x for x in out.splitlines() if "tumour_burden.max_abs_error" in x)
    assert "WORSE" in line


def test_rvd_is_gated_on_its_magnitude(tmp_path, run_cli):
    """R02: RVD -0.05 -> -0.20 is worse (|RVD| grew) although the signed value went down."""

    def more_under(summary: dict) -> None:
        summary["regions"]["liver"]["rvd"]["mean"] = -0.20

    base = fake_summary(LIVER, TUMOUR, rvd=-0.05)
    cur = copy.deepcopy(base)
    more_under(cur)
    write_summary(tmp_path / "base.json", base)
    write_summary(tmp_path / "cur.json", cur)
    code, out, err = run_cli("regress", tmp_path / "cur.json", tmp_path / "base.json")
    assert code == 1 and "liver.rvd" in err, out + err
