"""`e2net-eval regress`: pass, fail, bad input, directions, tolerances, undefined values."""

from __future__ import annotations

import json

import pytest

from e2net_eval.errors import InputError
from e2net_eval.report.regress import (
    compare,
    flatten_summary,
    higher_is_better,
    load_metrics,
    parse_tolerance,
)
from tests.helpers.report_fakes import fake_summary, write_summary

LIVER = [0.95, 0.96, 0.94, 0.97]
TUMOUR = [0.60, 0.70, 0.65, 0.80]


def _pair(tmp_path, cur: dict, base: dict):
    write_summary(tmp_path / "cur.json", cur)
    write_summary(tmp_path / "base.json", base)
    return tmp_path / "cur.json", tmp_path / "base.json"


def test_flatten_and_directions():
    flat = flatten_summary(fake_summary(LIVER, TUMOUR))
    assert flat["liver.dice_per_case"] == pytest.approx(0.955)
    assert "tumour.assd" in flat and "detection.any_overlap.f1" in flat
    assert "detection.tp" not in flat and "tumour_burden.n_no_liver_predicted" not in flat
    assert higher_is_better("liver.dice_per_case") is True
    assert higher_is_better("tumour.assd") is False
    assert higher_is_better("tumour_burden.rmse") is False
    assert higher_is_better("detection.any_overlap.f1") is True


def test_identical_summaries_pass(tmp_path, run_cli):
    cur, base = _pair(tmp_path, fake_summary(LIVER, TUMOUR), fake_summary(LIVER, TUMOUR))
    code, out, err = run_cli("regress", cur, base)
    assert code == 0, err
    assert "liver.dice_per_case" in out and "WORSE" not in out


def test_worse_dice_fails_and_tolerance_allows_it(tmp_path, run_cli):
    worse = [d - 0.02 for d in TUMOUR]
    cur, base = _pair(tmp_path, fake_summary(LIVER, worse), fake_summary(LIVER, TUMOUR))
    code, out, err = run_cli("regress", cur, base)
    assert code == 1
    assert "tumour.dice_per_case" in err and "WORSE" in out
    code, _, err = run_cli(
        "regress", cur, base, "--tolerance", "tumour.dice_*=0.021", "--tolerance", "tumour.voe=0.03"
    )
    assert code == 0, err
    code, _, _ = run_cli("regress", cur, base, "--default-tolerance", "0.019")
    assert code == 1
    code, _, _ = run_cli("regress", cur, base, "--default-tolerance", "0.025")
    assert code == 0


def test_direction_lower_is_better(tmp_path):
    better_dist = flatten_summary(fake_summary(LIVER, TUMOUR, assd=1.0))
    base = flatten_summary(fake_summary(LIVER, TUMOUR, assd=2.0))
    by_key = {d.key: d for d in compare(better_dist, base)}
    assert by_key["tumour.assd"].status == "better"
    by_key = {d.key: d for d in compare(base, better_dist)}
    assert by_key["tumour.assd"].status == "worse"
    assert by_key["liver.dice_per_case"].status == "ok"


def test_rvd_compared_on_magnitude():
    base = flatten_summary(fake_summary(LIVER, TUMOUR, rvd=0.10))
    flipped = flatten_summary(fake_summary(LIVER, TUMOUR, rvd=-0.05))
    by_key = {d.key: d for d in compare(flipped, base)}
    assert by_key["liver.rvd"].status == "better"
    by_key = {d.key: d for d in compare(base, flipped)}
    assert by_key["liver.rvd"].status == "worse"


def test_undefined_values():
    defined = flatten_summary(fake_summary(LIVER, TUMOUR, assd=2.0))
    undefined = flatten_summary(fake_summary(LIVER, TUMOUR, assd=None))
    assert undefined["tumour.assd"] is None
    assert {d.key: d for d in compare(undefined, defined)}["tumour.assd"].status == "worse"
    assert {d.key: d for d in compare(defined, undefined)}["tumour.assd"].status == "newly defined"
    assert {d.key: d for d in compare(undefined, undefined)}["tumour.assd"].status == "undefined"


def test_run_directories_compare_every_summary(tmp_path, run_cli):
    for run, tumour in (("new", [d - 0.1 for d in TUMOUR]), ("old", TUMOUR)):
        write_summary(
            tmp_path / run / "eval" / "lits_val" / "dist" / "summary.json",
            fake_summary(LIVER, tumour),
        )
        write_summary(
            tmp_path / run / "eval" / "ircadb" / "dist" / "summary.json",
            fake_summary(LIVER, TUMOUR),
        )
    metrics = load_metrics(tmp_path / "old")
    assert "eval/lits_val/dist/tumour.dice_per_case" in metrics
    code, out, err = run_cli(
        "regress", tmp_path / "new", tmp_path / "old", "--json", tmp_path / "d.json"
    )
    assert code == 1
    assert "eval/lits_val/dist/tumour.dice_per_case" in err
    report = json.loads((tmp_path / "d.json").read_text())
    worse = {d["key"] for d in report["deltas"] if d["status"] == "worse"}
    assert all(k.startswith("eval/lits_val/") for k in worse) and report["n_worse"] == len(worse)


def test_bad_input_exits_2(tmp_path, run_cli):
    cur, base = _pair(tmp_path, fake_summary(LIVER, TUMOUR), fake_summary(LIVER, TUMOUR))
    code, _, err = run_cli("regress", tmp_path / "missing.json", base)
    assert code == 2 and "missing.json" in err
    (tmp_path / "broken.json").write_text("{not json")
    code, _, err = run_cli("regress", tmp_path / "broken.json", base)
    assert code == 2 and "broken.json" in err
    (tmp_path / "other.json").write_text(json.dumps({"regions": {}}))
    code, _, err = run_cli("regress", tmp_path / "other.json", base)
    assert code == 2 and "no metric in common" in err
    lacking = fake_summary(LIVER, TUMOUR)
    del lacking["regions"]["tumour"]["assd"]
    write_summary(cur, lacking)
    code, _, err = run_cli("regress", cur, base)
    assert code == 2 and "tumour.assd" in err
    code, _, err = run_cli("regress", base, base, "--tolerance", "liver.dice")
    assert code == 2 and "METRIC=VALUE" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("regress", tmp_path / "empty", base)
    assert code == 2


def test_parse_tolerance():
    assert parse_tolerance("a.b=0.5") == ("a.b", 0.5)
    for bad in ("a.b=-1", "=1", "a.b=x", "a.b=nan"):
        with pytest.raises(InputError):
            parse_tolerance(bad)


def test_committed_phantom_baseline_is_gateable(run_cli):
    from e2net_eval.report.leaderboards import LEADERBOARD_DIR

    base = LEADERBOARD_DIR / "phantom-baseline"
    metrics = load_metrics(base)
    sets = {k.split("/")[1] for k in metrics}
    configs = {k.split("/")[2] for k in metrics}
    assert sets == {"lits_val", "ircadb"}
    assert configs == {"stage1", "baseline", "edge", "dist", "edge_dcff", "dist_dcff"}
    code, out, err = run_cli("regress", base, base)
    assert code == 0, err
