"""Schema-valid fake summary.json contents for report and regress tests (legit test data)."""

from __future__ import annotations

from typing import Any

import numpy as np

from e2net_eval.util.jsonio import dump_json


def fake_summary(
    liver: list[float],
    tumour: list[float],
    *,
    burden_ref: list[float] | None = None,
    burden_pred: list[float] | None = None,
    assd: float | None = 2.0,
    rvd: float = 0.05,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A summary in the architecture.md shape built from per-case Dice lists (same length)."""
    n = len(liver)
    ids = [str(i) for i in range(n)]
    bref = burden_ref if burden_ref is not None else [0.02 * (i % 3) for i in range(n)]
    bpred = burden_pred if burden_pred is not None else [b + 0.005 for b in bref]
    err = np.asarray(bpred) - np.asarray(bref)

    def region(values: list[float]) -> dict[str, Any]:
        mean = float(np.mean(values))
        return {
            "dice_per_case": mean,
            "dice_global": min(1.0, mean + 0.01),
            "voe": {"mean": 1 - mean, "n": n, "n_undefined": 0},
            "rvd": {"mean": rvd, "n": n, "n_undefined": 0},
            "assd": {"mean": assd, "n": n, "n_undefined": 0 if assd is not None else n},
        }

    return {
        "meta": {"version": "0.1.0", "protocol": "leak-free", **(meta or {})},
        "n_cases": n,
        "regions": {"liver": region(liver), "tumour": region(tumour)},
        "tumour_burden": {
            "rmse": float(np.sqrt(np.mean(err**2))),
            "max_abs_error": float(np.max(np.abs(err))),
            "n_no_liver_predicted": 0,
        },
        "detection": {
            "tp": 5,
            "fp": 1,
            "fn": 2,
            "precision": 0.83,
            "recall": 0.71,
            "f1": 0.77,
            "any_overlap": {
                "tp": 6,
                "fp": 0,
                "fn": 1,
                "precision": 1.0,
                "recall": 0.86,
                "f1": 0.92,
            },
        },
        "metric_per_case": [
            {
                "case": ids[i],
                "liver": {"dice": liver[i]},
                "tumour": {"dice": tumour[i]},
                "tumour_burden": {"reference": bref[i], "predicted": bpred[i]},
            }
            for i in range(n)
        ],
        "n_nonfinite": 0,
    }


def write_summary(path, summary: dict[str, Any]) -> None:
    """Write a summary with the project's strict JSON writer."""
    dump_json(path, summary)
