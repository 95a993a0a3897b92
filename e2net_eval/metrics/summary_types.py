"""The types of a summary.json's metrics, checked in one light place (no numpy, no
pandas): `regress` and `e2net_eval.scores` (`compare`, `report`) both read summaries
through `check_types`."""

from __future__ import annotations

from typing import Any

from e2net_eval.errors import InputError
from e2net_eval.metrics.registry import SET_SECTIONS, metric_for

__all__ = ["check_types"]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_types(summary: Any) -> None:
    """Every metric of a summary is a number or null: anything else is an InputError that
    names the metric (a string, a bool, a list, a region or section that is not an object).

    Nothing of the wrong type is ever left out silently: a baseline whose tumour Dice is the
    string "0.8" would otherwise pass a current tumour Dice of 0 (`regress`), and `compare`
    would show a metric of the wrong type as n/a.
    """
    if not isinstance(summary, dict):
        raise InputError(f"not a summary.json: a JSON {type(summary).__name__}, not an object")
    if not isinstance(summary.get("regions"), dict):
        raise InputError("not a summary.json: no 'regions' object")
    if "n_cases" in summary and not _is_number(summary["n_cases"]):
        raise InputError(f"n_cases is {summary['n_cases']!r}, not a number")

    def walk(key: str, value: Any, block: bool = True) -> None:
        # a block of metrics, or a metric's stats block ("mean", "std", ... numbers)
        stats = isinstance(value, dict) and "mean" in value
        if isinstance(value, dict) and block and (stats or metric_for(key) is None):
            for name, sub in value.items():
                walk(f"{key}.{name}", sub, block=not stats)
        elif value is not None and not _is_number(value):
            raise InputError(
                f"metric {key} is {type(value).__name__} {value!r}, not a number or null"
            )

    for region, block in summary["regions"].items():
        if not isinstance(block, dict):
            raise InputError(f"region {region} is a {type(block).__name__}, not an object")
        walk(str(region), block)
    for section in SET_SECTIONS:
        if section not in summary:
            continue
        block = summary[section]
        if not isinstance(block, dict):
            raise InputError(f"section {section} is a {type(block).__name__}, not an object")
        walk(section, block)
