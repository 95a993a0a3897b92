"""The regression gate: compare two summary.json files metric by metric.

A metric is *worse* when it moved against its direction by more than its tolerance
(absolute, in the metric's own unit: 0.01 Dice = one percentage point). A metric that was
defined in the baseline and is undefined (null) now is worse too; one that became defined
is not. RVD is compared on |RVD|.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2net_eval.errors import InputError, printable
from e2net_eval.metrics.registry import SET_SECTIONS, metric_for, out_of_range
from e2net_eval.metrics.summary_types import check_types
from e2net_eval.report.comparable import difference, reference_cases
from e2net_eval.rundir import SUMMARY_JSON, is_ablation_run
from e2net_eval.util.jsonio import load_json

# Counts and bookkeeping in a summary: reported by other tools, never gated.
_NOT_GATED = {"n", "n_undefined", "n_cases", "n_nonfinite", "tp", "fp", "fn"}
_NOT_GATED |= {"n_no_liver_predicted", "reference", "predicted", "iou_threshold"}
_NOT_GATED |= {"n_ref_lesions", "n_pred_lesions"}
_EPS = 1e-12


@dataclass
class Delta:
    """One metric compared: values may be None (undefined); `status` says what happened."""

    key: str
    baseline: float | None
    current: float | None
    tolerance: float
    higher_is_better: bool | None
    status: str  # "ok", "better", "worse", "undefined", "newly defined", "not gated"

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline


def higher_is_better(key: str) -> bool | None:
    """Direction of a flattened summary key (the registry's), None when no metric is known."""
    metric = metric_for(key)
    return None if metric is None else bool(metric.higher_is_better)


def uses_absolute_value(key: str) -> bool:
    """True for signed metrics (RVD) whose magnitude is what gets better or worse."""
    metric = metric_for(key)
    return metric is not None and metric.absolute


def flatten_summary(summary: dict[str, Any]) -> dict[str, float | None]:
    """The gated metrics of one summary as flat keys: `liver.dice_per_case`, `tumour.assd`,
    `tumour_burden.rmse`, `detection.f1`, `detection.any_overlap.f1`, `panoptic.pq` (mean
    per case), `panoptic.pooled.pq`; the set sections are the registry's.

    The summary's types are checked first (`check_types`): every metric is a number or null.
    """
    check_types(summary)
    out: dict[str, float | None] = {}

    def leaf(key: str, value: Any) -> None:
        out[key] = None if value is None else float(value)

    for region, block in summary["regions"].items():
        for name, value in block.items():
            if isinstance(value, dict):
                if "mean" in value:
                    leaf(f"{region}.{name}", value["mean"])
            elif name not in _NOT_GATED:
                leaf(f"{region}.{name}", value)
    for section in SET_SECTIONS:
        block = summary.get(section)
        if block is None:
            continue
        for name, value in block.items():
            if isinstance(value, dict) and "mean" in value:
                leaf(f"{section}.{name}", value["mean"])
            elif isinstance(value, dict):
                for sub, v in value.items():
                    if sub not in _NOT_GATED and not isinstance(v, dict):
                        leaf(f"{section}.{name}.{sub}", v)
            elif name not in _NOT_GATED:
                leaf(f"{section}.{name}", value)
    return out


def find_summaries(path: str | Path) -> dict[str, Path]:
    """Summary files of a path, keyed by their folder relative to it ("" for the file itself).

    A file is used as is. A directory with `summary.json` directly inside means that file;
    otherwise every `summary.json` below it (in an ablation run directory, below `eval/`).
    """
    path = Path(path)
    if path.is_file():
        return {"": path}
    if not path.is_dir():
        raise InputError("no such file or directory", path=path)
    if (path / SUMMARY_JSON).is_file():
        return {"": path / SUMMARY_JSON}
    # an ablation run: only its evaluation summaries (RUN/eval/<set>/<config>/)
    base = path / "eval" if is_ablation_run(path) and (path / "eval").is_dir() else path
    found = {
        str(p.parent.relative_to(path).as_posix()): p for p in sorted(base.rglob(SUMMARY_JSON))
    }
    if not found:
        raise InputError(f"no {SUMMARY_JSON} in this directory or below", path=path)
    return found


def load_summaries(path: str | Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Every summary under `path` (`find_summaries`), read and type-checked: prefix ->
    (file, summary)."""
    out: dict[str, tuple[Path, dict[str, Any]]] = {}
    for prefix, file in find_summaries(path).items():
        try:
            summary = load_json(file)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read JSON: {exc}", path=file) from exc
        try:
            check_types(summary)
            check_ranges(flatten_summary(summary))
        except InputError as exc:
            raise InputError(str(exc), path=file) from exc
        out[prefix] = (file, summary)
    return out


def check_ranges(metrics: dict[str, float | None]) -> None:
    """Every gated metric within its registry range (`Metric.bounds`): a current Dice of 5
    would pass any gate, a baseline one fail every gate."""
    for key, value in metrics.items():
        metric = metric_for(key)
        why = None if metric is None or value is None else out_of_range(metric, value)
        if why:
            raise InputError(f"metric {key}: {why}")


def metrics_of(summaries: dict[str, tuple[Path, dict[str, Any]]]) -> dict[str, float | None]:
    """All gated metrics of `load_summaries`' result, keys prefixed by the summary's folder
    when a run dir."""
    metrics: dict[str, float | None] = {}
    for prefix, (_, summary) in summaries.items():
        for key, value in flatten_summary(summary).items():
            metrics[f"{prefix}/{key}" if prefix else key] = value
    return metrics


def load_metrics(path: str | Path) -> dict[str, float | None]:
    """All gated metrics under `path`, keys prefixed by the summary's folder when a run dir."""
    return metrics_of(load_summaries(path))


def incomparable(
    current: dict[str, tuple[Path, dict[str, Any]]],
    baseline: dict[str, tuple[Path, dict[str, Any]]],
) -> list[str]:
    """What differs between the summaries CURRENT and BASELINE both have (cases, reference
    labels, protocol, scoring options; `comparable.difference`), one text per pair of
    summaries, naming CURRENT's file; empty when every pair may be gated."""
    found = []
    for prefix in sorted(set(current) & set(baseline)):
        (cfile, cur), (bfile, base) = current[prefix], baseline[prefix]
        for file, summary in ((cfile, cur), (bfile, base)):
            try:
                reference_cases(summary)
            except InputError as exc:
                raise InputError(str(exc), path=file) from exc
        diff = difference(cur, base)
        if diff:
            found.append(f"{cfile}: {diff}")
    return found


def check_tolerance(value: str | float, what: str = "--default-tolerance") -> float:
    """A tolerance as a float: finite and >= 0, else InputError (NaN or infinity would
    switch the gate off: every comparison with NaN is false)."""
    try:
        tol = float(value)
    except (TypeError, ValueError):
        tol = math.nan
    if not math.isfinite(tol) or tol < 0:
        raise InputError(f"{what} must be a finite number >= 0, got {value!r}")
    return tol


def tolerance_for(key: str, tolerances: list[tuple[str, float]], default: float) -> float:
    """The tolerance of `key`: the last pattern given that matches the full key or its metric
    part (`tumour.dice_per_case` matches `lits_val/dist_dcff/tumour.dice_per_case`)."""
    metric = key.rsplit("/", 1)[-1]
    chosen = default
    for pattern, value in tolerances:
        if fnmatch.fnmatchcase(key, pattern) or fnmatch.fnmatchcase(metric, pattern):
            chosen = value
    return chosen


def parse_tolerance(text: str) -> tuple[str, float]:
    """`"tumour.dice_per_case=0.02"` -> ("tumour.dice_per_case", 0.02)."""
    name, sep, value = text.rpartition("=")
    if not sep or not name:
        raise InputError(f"tolerance must be METRIC=VALUE with VALUE >= 0, got {text!r}")
    return name, check_tolerance(value, f"--tolerance {text!r}: VALUE")


def compare(
    current: dict[str, float | None],
    baseline: dict[str, float | None],
    tolerances: list[tuple[str, float]] | None = None,
    default_tolerance: float = 0.0,
) -> list[Delta]:
    """Compare every baseline metric with the current one; InputError if CURRENT lacks one
    or a tolerance is not a finite number >= 0."""
    default_tolerance = check_tolerance(default_tolerance)
    for pattern, tol in tolerances or []:
        check_tolerance(tol, f"--tolerance {pattern}")
    missing = sorted(set(baseline) - set(current))
    if not set(baseline) & set(current):
        raise InputError("CURRENT and BASELINE have no metric in common")
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InputError(f"CURRENT lacks {len(missing)} metric(s) that BASELINE has: {shown}")
    deltas = []
    for key in sorted(baseline):
        base, cur = baseline[key], current[key]
        hib = higher_is_better(key)
        tol = tolerance_for(key, tolerances or [], default_tolerance)
        deltas.append(Delta(key, base, cur, tol, hib, _status(key, base, cur, hib, tol)))
    return deltas


def _status(key: str, base: float | None, cur: float | None, hib: bool | None, tol: float) -> str:
    if hib is None:
        return "not gated"
    if base is None:
        return "undefined" if cur is None else "newly defined"
    if cur is None:
        return "worse"
    if uses_absolute_value(key):
        base, cur = abs(base), abs(cur)
    gain = (cur - base) if hib else (base - cur)
    if gain < -(tol + _EPS):
        return "worse"
    return "better" if gain > _EPS else "ok"


def _fmt(value: float | None) -> str:
    return "null" if value is None else f"{value:.6g}"


def format_deltas(deltas: list[Delta]) -> str:
    """A plain-text table: metric, baseline, current, delta, tolerance, direction, status."""
    header = ["metric", "baseline", "current", "delta", "tolerance", "better", "status"]
    rows = [header]
    for d in deltas:
        direction = {True: "higher", False: "lower", None: "?"}[d.higher_is_better]
        if uses_absolute_value(d.key) and d.higher_is_better is not None:
            direction = "|lower|"
        delta = "" if d.delta is None else f"{d.delta:+.6g}"
        status = d.status.upper() if d.status == "worse" else d.status
        key = printable(d.key)  # keys are a JSON file's: no terminal escapes
        values = [_fmt(d.baseline), _fmt(d.current), delta, f"{d.tolerance:g}"]
        rows.append([key, *values, direction, status])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"
