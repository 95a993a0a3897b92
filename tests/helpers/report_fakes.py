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

    def region(values: list[float], ref: list[int], pred: list[int]) -> dict[str, Any]:
        mean = float(np.mean(values))
        inter = sum(d * (r + p) / 2 for d, r, p in zip(values, ref, pred, strict=True))
        return {
            "dice_per_case": mean,
            "dice_global": 2 * inter / (sum(ref) + sum(pred)),
            "voe": {"mean": 1 - mean, "n": n, "n_undefined": 0},
            "rvd": {"mean": rvd, "n": n, "n_undefined": 0},
            "assd": {"mean": assd, "n": n, "n_undefined": 0 if assd is not None else n},
        }

    return {
        "meta": {"version": "0.1.0", "protocol": "leak-free", **(meta or {})},
        "n_cases": n,
        "regions": {
            "liver": region(liver, [1000] * n, [1000] * n),
            "tumour": region(tumour, [100 * (i % 3) for i in range(n)], [100] * n),
        },
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
                "liver": {"dice": liver[i], "ref_voxels": 1000, "pred_voxels": 1000},
                "tumour": {"dice": tumour[i], "ref_voxels": 100 * (i % 3), "pred_voxels": 100},
                "tumour_burden": {"reference": bref[i], "predicted": bpred[i]},
            }
            for i in range(n)
        ],
        "n_nonfinite": 0,
    }


def write_summary(path, summary: dict[str, Any]) -> None:
    """Write a summary with the project's strict JSON writer."""
    dump_json(path, summary)


def fake_run(
    root,
    configs=("stage1", "baseline", "edge", "dist", "edge_dcff", "dist_dcff"),
    sets=("lits_val", "ircadb"),
    n: int = 5,
    protocol: str = "leak-free",
) -> None:
    """An ablation run directory with ablation.json and one summary per set and config;
    config k improves tumour Dice by 2 points per step (so tests know the order)."""
    root.mkdir(parents=True, exist_ok=True)
    info = {
        "protocol": protocol,
        "profile": "small",
        "seed": 7,
        "device": "cpu",
        "configs": list(configs),
        "phantom": True,
        "split": {
            "seed": 7,
            "train": ["10", "11", "12"],
            "validation": [str(i) for i in range(n)],
            "exclude": ["3"] if protocol == "leak-free" else [],
        },
        "overlap": [{"lits": "3", "ircadb": "3Dircadb1.1"}],
    }
    dump_json(root / "ablation.json", info)
    for s_i, set_name in enumerate(sets):
        for k, config in enumerate(configs):
            liver = [0.90 + 0.01 * k + 0.002 * i for i in range(n)]
            tumour = [0.50 + 0.02 * k + 0.03 * i + 0.01 * s_i for i in range(n)]
            write_summary(
                root / "eval" / set_name / config / "summary.json",
                fake_summary(liver, tumour, meta={"config": config}),
            )


def column(number: int, summary_key: str) -> dict[str, Any]:
    """The column of the paper's Table `number` that shows `summary_key` (its ``key`` in
    tables.csv, its ``scale``: the one home of those facts, `leaderboards/table*.json`)."""
    from e2net_eval.report.leaderboards import load_table

    return next(c for c in load_table(number)["columns"] if c["summary_key"] == summary_key)


def cell_of(table: Any, row: Any, key: str) -> Any:
    """The cell of `row` in the column `key` of a report table (looked up exactly)."""
    return row.cells[[k for k, _ in table.columns].index(key)]
