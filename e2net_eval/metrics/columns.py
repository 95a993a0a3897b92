"""The columns of ``per_case.csv`` and their types, in one light place (no numpy): the
writer (`accumulate`) and the pandas reader (`e2net_eval.scores`) both read them.

Columns: ``case``, ``region``, one column per per-case metric of the registry (its `csv`
name, a float; empty = undefined), one per lesion-wise metric (filled on the tumour row),
then the bookkeeping below.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from e2net_eval.metrics.registry import Metric, case_metrics, lesion_metrics

#: Bookkeeping columns after the metric columns, with their pandas dtype (nullable types:
#: an empty cell, an undefined value or a column a row does not fill, is ``<NA>``).
BOOKKEEPING: dict[str, str] = {
    "ref_voxels": "Int64",
    "pred_voxels": "Int64",
    "intersection": "Int64",
    "ref_volume_ml": "Float64",
    "pred_volume_ml": "Float64",
    "burden_ref": "Float64",
    "burden_pred": "Float64",
    "burden_error": "Float64",
    "no_liver_predicted": "boolean",
    "n_ref_lesions": "Int64",
    "n_pred_lesions": "Int64",
    "tp": "Int64",
    "fp": "Int64",
    "fn": "Int64",
    "tp_any": "Int64",
    "fp_any": "Int64",
    "fn_any": "Int64",
    "lesion_dice_mean": "Float64",
    "missing_prediction": "boolean",
}
#: The row that holds a case's tumour burden, lesion counts and lesion-wise metrics.
LESION_ROW = "tumour"
#: Metric columns are floats (NaN inside Python, empty in the CSV, <NA> in a frame).
METRIC_DTYPE = "Float64"


def csv_metrics(peer: bool = True) -> list[Metric]:
    """The metrics with a per_case.csv column: per-case, then lesion-wise (`peer`: with the
    peer metrics)."""
    return [*case_metrics(peer), *lesion_metrics(peer)]


def csv_columns(peer: bool = True) -> tuple[str, ...]:
    """The columns of per_case.csv: case, region, each per-case metric's column, each
    lesion-wise metric's column (filled on the tumour row), bookkeeping. `peer`: with the
    peer metrics' columns."""
    return ("case", "region", *(m.csv for m in csv_metrics(peer)), *BOOKKEEPING)


def csv_dtypes() -> dict[str, str]:
    """pandas dtype of every per_case.csv column (ids are strings: "007" stays "007")."""
    return {
        "case": "string",
        "region": "string",
        **{m.csv: METRIC_DTYPE for m in csv_metrics()},
        **BOOKKEEPING,
    }


def entry_rows(entry: dict[str, Any], regions: Iterable[str], peer: bool) -> list[dict[str, Any]]:
    """The per_case.csv rows of one ``metric_per_case`` entry of summary.json, one per
    region, without the volumes in ml (they need the voxel size); a value the entry lacks is
    None. The writer (`accumulate`) and the reader of a summary (`e2net_eval.scores`) both
    make their rows here."""
    burden = entry.get("tumour_burden") or {}
    les = entry.get("lesions") or {}
    anyo = les.get("any_overlap") or {}
    panoptic = entry.get("panoptic") or {}
    rows = []
    for region in regions:
        values = entry.get(region) or {}
        row: dict[str, Any] = {"case": str(entry.get("case")), "region": region}
        row.update({m.csv: values.get(m.name) for m in case_metrics(peer)})
        row.update({k: values.get(k) for k in ("ref_voxels", "pred_voxels", "intersection")})
        if region == LESION_ROW:
            ref, pred = burden.get("reference"), burden.get("predicted")
            row.update(
                burden_ref=ref,
                burden_pred=pred,
                burden_error=None if ref is None or pred is None else pred - ref,
                no_liver_predicted=burden.get("no_liver_predicted"),
                n_ref_lesions=les.get("n_ref"),
                n_pred_lesions=les.get("n_pred"),
                tp=les.get("tp"),
                fp=les.get("fp"),
                fn=les.get("fn"),
                tp_any=anyo.get("tp"),
                fp_any=anyo.get("fp"),
                fn_any=anyo.get("fn"),
                lesion_dice_mean=les.get("lesion_dice_mean"),
            )
            row.update({m.csv: panoptic.get(m.name) for m in lesion_metrics(peer)})
        row["missing_prediction"] = entry.get("missing_prediction")
        rows.append(row)
    return rows
