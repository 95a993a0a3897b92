"""Items 3 and 4 of issue 11: `regress` never passes a number it could not read honestly.

Bare NaN/Infinity is not JSON (a file holding them is rejected, exit 2), and a metric of
the wrong type (a string, a bool, a region that is not an object) is an input error naming
the metric and the file, never silently left out of the comparison."""

from __future__ import annotations

import json

import pytest

from tests.helpers.reliability import one_error_line


def _summary(liver: float = 0.95, tumour: float = 0.70) -> dict:
    region = lambda d: {  # noqa: E731 - a table of values
        "dice_per_case": d,
        "dice_global": d,
        "voe": {"mean": 1 - d, "n": 3, "n_undefined": 0},
        "rvd": {"mean": 0.02, "n": 3, "n_undefined": 0},
        "assd": {"mean": 1.5, "n": 3, "n_undefined": 0},
    }
    return {
        "meta": {"protocol": "leak-free"},
        "n_cases": 3,
        "regions": {"liver": region(liver), "tumour": region(tumour)},
        "tumour_burden": {"rmse": 0.01, "max_abs_error": 0.02, "n_no_liver_predicted": 0},
        "detection": {
            "tp": 3,
            "fp": 1,
            "fn": 0,
            "precision": 0.75,
            "recall": 1.0,
            "f1": 0.86,
            "any_overlap": {"tp": 3, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0},
        },
    }


def _write(path, obj_or_text) -> str:
    text = obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text, indent=2)
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_item03_bare_nan_and_infinity_are_rejected(tmp_path, run_cli, literal):
    base = _write(tmp_path / "base.json", _summary())
    text = json.dumps(_summary(), indent=2).replace(
        '"dice_per_case": 0.7', f'"dice_per_case": {literal}'
    )
    assert literal in text
    cur = _write(tmp_path / "cur.json", text)
    code, out, err = run_cli("regress", cur, base)
    assert code == 2, (out, err)
    one_error_line(err, "cur.json")
    # and in the baseline too
    code, out, err = run_cli("regress", base, cur)
    assert code == 2, (out, err)
    one_error_line(err, "cur.json")


def _string_metric(s):
    s["regions"]["tumour"]["dice_per_case"] = "0.7"
    return "tumour.dice_per_case"


def _bool_metric(s):
    s["regions"]["tumour"]["dice_global"] = True
    return "tumour.dice_global"


def _region_not_an_object(s):
    s["regions"]["tumour"] = [0.7, 0.7]
    return "tumour"


def _mean_not_a_number(s):
    s["regions"]["liver"]["assd"]["mean"] = "1.5 mm"
    return "liver.assd"


def _section_not_an_object(s):
    s["detection"] = "tp 3 fp 1"
    return "detection"


WRONG_TYPES = [
    _string_metric,
    _bool_metric,
    _region_not_an_object,
    _mean_not_a_number,
    _section_not_an_object,
]


@pytest.mark.parametrize("damage", WRONG_TYPES)
def test_item04_metrics_of_the_wrong_type_are_input_errors(tmp_path, run_cli, damage):
    bad = _summary()
    key = damage(bad)
    good = _write(tmp_path / "good.json", _summary(tumour=0.0))  # a tumour Dice of 0
    broken = _write(tmp_path / "broken.json", bad)
    for cur, base in ((good, broken), (broken, good)):
        code, out, err = run_cli("regress", cur, base)
        assert code == 2, (damage.__name__, cur, out, err)
        one_error_line(err, "broken.json", key)
