"""`evaluate`'s outputs as pandas DataFrames: `read_per_case`, `read_summary`,
`read_evaluation` (both, checked against each other); see docs/reports.md, "pandas".

Bad input (a missing file, invalid JSON, a metric that is not a number or null, a cell
that is not a number, a cut row, a value outside its metric's `Metric.bounds`, a case and
region listed twice, a malformed ``metric_per_case`` item) is an `InputError` naming the
file (and the case and metric): exit 2 in the CLI.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from e2net_eval.errors import InputError
from e2net_eval.metrics.columns import (
    BOOKKEEPING,
    LESION_ROW,
    METRIC_DTYPE,
    csv_columns,
    csv_dtypes,
    csv_metrics,
    entry_rows,
)
from e2net_eval.metrics.registry import (
    METRICS,
    REGIONS,
    Metric,
    case_metrics,
    lesion_metrics,
    metric_for,
    out_of_range,
)
from e2net_eval.metrics.summary_types import check_types
from e2net_eval.rundir import PER_CASE_CSV, SUMMARY_JSON
from e2net_eval.util.jsonio import load_json
from e2net_eval.util.textsafe import csv_uncell

STATS = ("std", "median", "min", "max", "n", "n_undefined")
#: The columns of `read_summary`'s frame and their dtypes.
_SUMMARY_DTYPES = {
    "region": "string",
    "metric": "string",
    "key": "string",
    "value": "Float64",
    **{s: "Float64" for s in STATS[:4]},
    "n": "Int64",
    "n_undefined": "Int64",
    "higher_is_better": "boolean",
    "absolute": "boolean",
    "unit": "string",
    "level": "string",
}
SUMMARY_COLUMNS = tuple(_SUMMARY_DTYPES)
#: Suffix of the metric name of a lesion-wise score pooled over the set (``pq_pooled``:
#: ``panoptic.pooled.pq``), beside its mean per case (``pq``: ``panoptic.pq``).
POOLED = "_pooled"
_NOT_SECTIONS = {"meta", "regions", "metric_per_case"}


# -- summary.json ------------------------------------------------------------------------
def _summary_path(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_JSON
    if not path.is_file():
        raise InputError("no summary.json (not an `evaluate` output)", path=path)
    return path


def load_summary(path: str | Path) -> dict[str, Any]:
    """The summary dict of an output folder or a summary.json, checked for its main keys."""
    path = _summary_path(path)
    try:
        summary = load_json(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read JSON: {' '.join(str(exc).split())}", path=path) from None
    if not isinstance(summary, dict):
        raise InputError("summary.json is not a JSON object", path=path)
    if not isinstance(summary.get("regions"), dict):
        raise InputError("not a summary.json: no 'regions' block", path=path)
    if not isinstance(summary.get("metric_per_case"), list):
        raise InputError("summary.json lacks 'metric_per_case'", path=path)
    try:
        check_types(summary)
    except InputError as exc:
        raise InputError(str(exc), path=path) from None
    _check_items(summary, path)
    return summary


_ITEM_BLOCKS = ("tumour_burden", "lesions", "panoptic")


def _check_items(summary: dict[str, Any], path: Path) -> None:
    """Every ``metric_per_case`` item is an object with its own non-empty string case id,
    and its region and section blocks are objects (or null)."""
    seen: set[str] = set()
    regions = [r for r in summary["regions"] if isinstance(summary["regions"][r], dict)]
    for i, item in enumerate(summary["metric_per_case"]):
        case = item.get("case") if isinstance(item, dict) else None
        if not isinstance(case, str) or not case:
            raise InputError(f"metric_per_case[{i}] is not an object with a case id", path=path)
        if case in seen:
            raise InputError("listed twice in metric_per_case", case=case, path=path)
        seen.add(case)
        for key in (*regions, *_ITEM_BLOCKS):
            if item.get(key) is not None and not isinstance(item[key], dict):
                raise InputError(f"metric_per_case {key} is not an object", case=case, path=path)
        les = item.get("lesions") or {}
        if les.get("any_overlap") is not None and not isinstance(les["any_overlap"], dict):
            raise InputError(
                "metric_per_case lesions.any_overlap is not an object", case=case, path=path
            )


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _row(
    region: str, name: str, key: str, value: Any, block: dict | None, metric: Metric | None
) -> dict[str, Any]:
    row: dict[str, Any] = {"region": region, "metric": name, "key": key, "value": value}
    for s in STATS:
        row[s] = None if block is None else block.get(s)
    if metric is not None:
        row.update(
            higher_is_better=metric.higher_is_better,
            absolute=metric.absolute,
            unit=metric.unit,
            level=metric.level,
        )
    return row


def _order(row: dict[str, Any]) -> tuple[int, int, int]:
    """Registry order of the metric (a pooled value after its per-case mean), then region."""
    names = list(METRICS)
    base = row["metric"].removesuffix(POOLED)
    rank = names.index(base) if base in names else len(names)
    region_rank = {r: i for i, r in enumerate(REGIONS)}
    return rank, int(row["metric"] != base), region_rank.get(row["region"], len(REGIONS))


def summary_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per region and metric of a summary dict (see the module docstring)."""
    rows = []
    for region, block in summary["regions"].items():
        if not isinstance(block, dict):
            continue
        for name, value in block.items():
            key = f"regions.{region}.{name}"
            if isinstance(value, dict) and "mean" in value:
                rows.append(_row(region, name, key, value["mean"], value, METRICS.get(name)))
            elif _number(value):
                rows.append(_row(region, name, key, value, None, METRICS.get(name)))

    def walk(prefix: str, block: dict) -> None:
        for part, value in block.items():
            key = f"{prefix}.{part}"
            stats = value if isinstance(value, dict) and "mean" in value else None
            if isinstance(value, dict) and stats is None:
                walk(key, value)
                continue
            metric = metric_for(key)
            if metric is None or metric.level not in ("set", "lesion"):
                continue  # counts and bookkeeping (tp, n, ...) are not metrics
            name = metric.name + (POOLED if ".pooled." in f".{key}." else "")
            value = (stats or {}).get("mean", value)
            rows.append(_row(LESION_ROW, name, key, value, stats, metric))

    for section, block in summary.items():
        if section not in _NOT_SECTIONS and isinstance(block, dict):
            walk(section, block)
    rows.sort(key=_order)
    frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return _typed(frame, _SUMMARY_DTYPES, "summary.json")


def read_summary(path: str | Path) -> pd.DataFrame:
    """One row per region and metric of an `evaluate` output (folder or summary.json)."""
    return summary_frame(load_summary(path))


# -- per_case ----------------------------------------------------------------------------
def per_case_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """The per_case.csv frame rebuilt from a summary's ``metric_per_case`` (the volume
    columns, which need the voxel size, are <NA>)."""
    meta = summary.get("meta") if isinstance(summary.get("meta"), dict) else {}
    peer = bool(meta.get("peer_metrics", False))  # older files have no peer metrics
    columns = csv_columns(peer)
    known = set(csv_columns())
    extra: list[str] = []
    rows = []
    regions = [r for r in summary["regions"] if isinstance(summary["regions"][r], dict)]
    for entry in summary["metric_per_case"]:
        for row in entry_rows(entry, regions, peer):
            for k, v in (entry.get(row["region"]) or {}).items():
                if k not in row and _number(v) and k not in known:  # a metric this registry
                    row[k] = v  # does not know (a newer file)
                    if k not in extra:
                        extra.append(k)
            rows.append(row)
    frame = pd.DataFrame(rows, columns=[*columns, *extra])
    return _typed(frame, {**csv_dtypes(), **{k: METRIC_DTYPE for k in extra}}, SUMMARY_JSON)


#: Cells that mean "undefined" in a per_case.csv (ours are empty; other tools write nan).
_NA_TEXT = ["", "nan", "NaN", "NA", "null"]
#: Columns of names, read as written (a case id may be "NA" or "-3").
_NAMES = ("case", "region")
#: pandas 2 parses the last digit of some floats wrongly unless asked for round-trip parsing
#: (13 of 97 cells of a phantom per_case.csv, measured); pandas 3 is exact by default and
#: deprecates the option.
_EXACT_FLOATS = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


def _read_csv(path: Path) -> pd.DataFrame:
    """per_case.csv read by pandas with the nullable dtype of every known column; an
    unknown column (a newer metric) is a Float64 when it holds numbers, else a string."""
    dtypes = csv_dtypes()
    try:
        if b"\0" in Path(path).read_bytes():  # pandas ends a cell at NUL: a silent other value
            raise InputError("a NUL byte: not a text CSV file", path=path)
        header = pd.read_csv(path, nrows=0).columns
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read CSV: {' '.join(str(exc).split())}", path=path) from None
    for col in ("case", "region", *BOOKKEEPING):  # evaluate always writes them all
        if col not in header:
            raise InputError(f"per_case.csv lacks the column {col!r}", path=path)
    # Floats are parsed as numpy float64 (pandas ignores `float_precision` for Float64 and
    # would lose the last digit), then made nullable.
    parse = {c: "float64" if dtypes[c] == "Float64" else dtypes[c] for c in header if c in dtypes}
    try:
        frame = pd.read_csv(
            path,
            dtype=parse,
            keep_default_na=False,
            # names are never "undefined": a case called NA stays "NA"
            na_values={c: _NA_TEXT for c in header if c not in _NAMES},
            **_EXACT_FLOATS,  # the file holds repr(float): read it back exactly
        )
    except (TypeError, ValueError, OverflowError) as exc:  # "inf" as an Int64: Overflow
        raise _bad_cell(path, dtypes) or InputError(
            f"cannot read CSV: {' '.join(str(exc).split())}", path=path
        ) from None
    _check_row_lengths(path, len(header))
    for col in frame.columns:
        if col in dtypes:
            frame[col] = frame[col].astype(dtypes[col])
        else:
            kind = frame[col].dtype.kind
            frame[col] = frame[col].astype(METRIC_DTYPE if kind in "iuf" else "string")
        if frame[col].dtype == "string":  # names guarded against formulas when written
            frame[col] = frame[col].map(csv_uncell, na_action="ignore").astype("string")
    return frame


def _check_row_lengths(path: Path, n_columns: int) -> None:
    """Every row has a cell for each column of the header: pandas fills a short row (a cut
    file's last line) with <NA>, values that `evaluate` never leaves out."""
    with open(path, newline="", encoding="utf-8") as f:  # pandas has decoded it already
        for i, row in enumerate(csv.reader(f)):
            if i and row and len(row) < n_columns:
                raise InputError(
                    f"row {i} has {len(row)} cells, fewer than the {n_columns} columns of "
                    "the header (a cut file?)",
                    case=csv_uncell(row[0]),
                    path=path,
                )


def _bad_cell(path: Path, dtypes: dict[str, str]) -> InputError | None:
    """The first cell pandas could not convert, as an error naming its column and case."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in raw.columns:
        dtype = dtypes.get(col)
        if dtype is None or dtype == "string":
            continue
        cells = raw[col].where(~raw[col].isin(_NA_TEXT))
        if dtype == "boolean":
            bad = cells.notna() & ~cells.isin(["True", "False", "true", "false", "1", "0"])
        else:
            numbers = pd.to_numeric(cells, errors="coerce")
            bad = cells.notna() & numbers.isna()
            if dtype == "Int64":
                bad |= numbers.notna() & (numbers % 1 != 0)
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            what = {"boolean": "a boolean", "Int64": "an integer"}.get(dtype, "a number")
            return InputError(
                f"column {col}: {raw[col].iloc[i]!r} is not {what}",
                case=csv_uncell(str(raw["case"].iloc[i])),
                path=path,
            )
    return None


def read_per_case(path: str | Path) -> pd.DataFrame:
    """One row per case and region of an `evaluate` output (see the module docstring),
    every value checked (`check_per_case`)."""
    path = Path(path)
    source = per_case_source(path)
    if source is None:
        source = _summary_path(path)
        frame = per_case_frame(load_summary(source))
    elif not source.is_file():
        raise InputError("file not found", path=path)
    else:
        frame = _read_csv(source)
    check_per_case(frame, source)
    return frame


def _floats(column: pd.Series) -> np.ndarray:
    return column.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)


def check_per_case(frame: pd.DataFrame, source: str | Path) -> None:
    """Each (case, region) once, and every defined metric value within its registry range
    (`Metric.bounds`; infinity never), every count >= 0; InputError naming the file, case
    and metric otherwise."""
    dup = frame.duplicated(["case", "region"]).to_numpy()
    if dup.any():
        i = int(dup.nonzero()[0][0])
        raise InputError(
            f"region {frame['region'].iloc[i]} is listed twice",
            case=str(frame["case"].iloc[i]),
            path=source,
        )
    for m in csv_metrics():
        if m.csv not in frame.columns:
            continue
        for i, value in enumerate(_floats(frame[m.csv])):
            why = None if math.isnan(value) else out_of_range(m, float(value))
            if why:
                region = frame["region"].iloc[i]
                raise InputError(f"{region} {why}", case=str(frame["case"].iloc[i]), path=source)
    for col, dtype in BOOKKEEPING.items():
        if dtype == "Int64" and col in frame.columns:
            neg = (_floats(frame[col]) < 0).nonzero()[0]
            if neg.size:
                i = int(neg[0])
                raise InputError(
                    f"{col} is {frame[col].iloc[i]}, a negative count",
                    case=str(frame["case"].iloc[i]),
                    path=source,
                )


# -- typing ------------------------------------------------------------------------------
def _typed(frame: pd.DataFrame, dtypes: dict[str, str], source: str | Path) -> pd.DataFrame:
    """`frame` (built from JSON values: numbers, booleans, strings, None) with each column in
    its nullable dtype; a value that does not fit is an InputError naming file and column."""
    out = frame.astype(object).where(frame.notna(), None)
    try:
        return out.astype({c: dtypes.get(c, "string") for c in out.columns})
    except (TypeError, ValueError) as exc:
        for col in out.columns:
            try:
                out[col].astype(dtypes.get(col, "string"))
            except (TypeError, ValueError):
                raise InputError(
                    f"column {col}: {' '.join(str(exc).split())}", path=source
                ) from None
        raise InputError(f"unexpected values ({exc})", path=source) from None


# -- both at once --------------------------------------------------------------------------
@dataclass
class Evaluation:
    """One `evaluate` output: the summary dict (point estimates, meta), the per-case frame
    and the summary frame."""

    path: Path
    summary: dict[str, Any]
    per_case: pd.DataFrame
    table: pd.DataFrame

    @property
    def meta(self) -> dict[str, Any]:
        meta = self.summary.get("meta")
        return meta if isinstance(meta, dict) else {}

    def case_ids(self) -> list[str]:
        return list(dict.fromkeys(self.per_case["case"]))


def read_evaluation(path: str | Path) -> Evaluation:
    """An output folder (summary.json, and per_case.csv when present) or a summary.json."""
    path = Path(path)
    summary_path = _summary_path(path)
    summary = load_summary(summary_path)
    per_case = read_per_case(path)
    in_summary = [str(e.get("case")) for e in summary["metric_per_case"]]
    in_csv = list(dict.fromkeys(per_case["case"]))
    if set(in_summary) != set(in_csv):
        only_csv = sorted(set(in_csv) - set(in_summary))
        only_json = sorted(set(in_summary) - set(in_csv))
        raise InputError(
            f"per_case.csv and summary.json list different cases (only in per_case.csv: "
            f"{', '.join(only_csv[:5]) or 'none'}; only in summary.json: "
            f"{', '.join(only_json[:5]) or 'none'})",
            path=path,
        )
    table = summary_frame(summary)
    check_summary(table, summary_path)
    csv_path = per_case_source(path)
    if csv_path is not None:
        check_columns(summary, per_case.columns, csv_path)
        check_agreement(per_case, per_case_frame(summary), csv_path)
    check_means(table, per_case, summary_path, csv_path)
    return Evaluation(summary_path, summary, per_case, table)


def per_case_source(path: Path) -> Path | None:
    """The per_case.csv `read_per_case(path)` reads, or None (the summary's items)."""
    if path.is_dir() and (path / PER_CASE_CSV).is_file():
        return path / PER_CASE_CSV
    return path if path.suffix == ".csv" else None


def _metric_of(name: str) -> Metric | None:
    return METRICS.get(name.removesuffix(POOLED))


def check_summary(table: pd.DataFrame, source: Path) -> None:
    """Every set figure of a summary (value, median, min, max) within its metric's range."""
    for _, row in table.iterrows():
        metric = _metric_of(str(row["metric"]))
        if metric is None:
            continue
        for col in ("value", "median", "min", "max"):
            value = row[col]
            why = None if value is pd.NA else out_of_range(metric, float(value))
            if why:
                raise InputError(f"{row['key']}: {why}", path=source)


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def check_agreement(csv: pd.DataFrame, items: pd.DataFrame, source: Path) -> None:
    """per_case.csv holds a row for every case and region of the summary's
    ``metric_per_case`` and, in it, the same value of every metric and of every
    bookkeeping fact the summary holds too (voxel counts, burden, lesion counts, flags);
    InputError naming the first row or value that differs."""
    keys = ["case", "region"]
    rows = items[keys].merge(csv[keys], on=keys, how="left", indicator=True)
    lacking = (rows["_merge"] == "left_only").to_numpy()
    if lacking.any():
        i = int(lacking.nonzero()[0][0])
        raise InputError(
            f"no {rows['region'].iloc[i]} row, though summary.json has one",
            case=str(rows["case"].iloc[i]),
            path=source,
        )
    merged = csv.merge(items, on=keys, suffixes=("", "__json"), how="inner")
    for m in csv_metrics():
        _agree(merged, m.csv, m.name, source, undefined_too=True)
    for col in BOOKKEEPING:  # a fact the summary lacks (<NA>: a volume in ml) is not compared
        _agree(merged, col, col, source, undefined_too=False)


def _agree(merged: pd.DataFrame, col: str, name: str, source: Path, undefined_too: bool) -> None:
    """Column `col` of per_case.csv equals its summary.json twin (`col__json`) in every row;
    `undefined_too`: an undefined value must be undefined in both."""
    if col not in merged.columns or f"{col}__json" not in merged.columns:
        return
    mine, theirs = _floats(merged[col]), _floats(merged[f"{col}__json"])
    for i, (a, b) in enumerate(zip(mine.tolist(), theirs.tolist(), strict=True)):
        if (undefined_too or not math.isnan(b)) and not _close(a, b):
            raise InputError(
                f"{merged['region'].iloc[i]} {name} is {a!r} here but {b!r} in summary.json",
                case=str(merged["case"].iloc[i]),
                path=source,
            )


def check_columns(summary: dict[str, Any], header: pd.Index, source: Path) -> None:
    """per_case.csv has the column of every metric the summary's ``metric_per_case`` holds
    (`evaluate` writes them all): a missing column is a damaged file, never a metric
    silently left out."""
    regions = [r for r in summary["regions"] if isinstance(summary["regions"][r], dict)]
    held: set[str] = set()
    for entry in summary["metric_per_case"]:
        for region in regions:
            held |= {m.csv for m in case_metrics() if m.name in (entry.get(region) or {})}
        held |= {m.csv for m in lesion_metrics() if m.name in (entry.get("panoptic") or {})}
    lacking = [c for c in csv_columns() if c in held and c not in header]
    if lacking:
        raise InputError(
            f"per_case.csv lacks the column {lacking[0]!r}, which summary.json holds", path=source
        )


def check_means(
    table: pd.DataFrame, per_case: pd.DataFrame, source: Path, csv_path: Path | None = None
) -> None:
    """Each per-case metric's set mean in the summary (`source`) is the mean of its defined
    per-case values (those the report resamples for its intervals), read from `csv_path`
    when given (the error names both files), else from the summary's own items."""
    for _, row in table.iterrows():
        metric = METRICS.get(str(row["metric"]))
        column = None if metric is None else (metric.per_case or metric.csv)
        per_case_level = metric is not None and (metric.per_case or metric.level != "set")
        if not per_case_level or column not in per_case.columns or row["value"] is pd.NA:
            continue
        if metric.level == "region" and metric.interval != "mean":
            continue
        values = _floats(per_case.loc[per_case["region"] == row["region"], column])
        values = values[~np.isnan(values)]
        if values.size and not _close(float(values.mean()), float(row["value"])):
            raise InputError(
                f"{row['key']} is {float(row['value'])!r} but its per-case values "
                f"{'' if csv_path is None else f'in {csv_path} '}"
                f"average {float(values.mean())!r}",
                path=source,
            )
