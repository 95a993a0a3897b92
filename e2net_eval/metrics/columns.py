"""The columns of ``per_case.csv`` and their types, in one light place (no numpy): the
writer (`accumulate`) and the pandas reader (`e2net_eval.scores`) both read them.

Columns: ``case``, ``region``, one column per per-case metric of the registry (its `csv`
name, a float; empty = undefined), one per lesion-wise metric (filled on the tumour row),
then the bookkeeping below.
"""

from __future__ import annotations

from e2net_eval.metrics.registry import case_metrics, lesion_metrics

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
CSV_BOOKKEEPING = tuple(BOOKKEEPING)
#: Metric columns are floats (NaN inside Python, empty in the CSV, <NA> in a frame).
METRIC_DTYPE = "Float64"


def csv_columns(peer: bool = True) -> tuple[str, ...]:
    """The columns of per_case.csv: case, region, each per-case metric's column, each
    lesion-wise metric's column (filled on the tumour row), bookkeeping. `peer`: with the
    peer metrics' columns."""
    metric_columns = [m.csv for m in (*case_metrics(peer), *lesion_metrics(peer))]
    return ("case", "region", *metric_columns, *CSV_BOOKKEEPING)


def csv_dtypes() -> dict[str, str]:
    """pandas dtype of every per_case.csv column (ids are strings: "007" stays "007")."""
    return {
        "case": "string",
        "region": "string",
        **{m.csv: METRIC_DTYPE for m in (*case_metrics(), *lesion_metrics())},
        **BOOKKEEPING,
    }
