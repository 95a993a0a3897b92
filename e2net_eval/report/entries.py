"""What a table or figure shows about one measured prediction set: an `Entry` (one
`evaluate` output with its label and provenance). Point estimates are the summary's own
numbers, never recomputed; the per-case frame feeds intervals, paired tests and figures.
See docs/reports.md, "One engine for `report` and `compare`".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from e2net_eval.metrics.columns import LESION_ROW
from e2net_eval.metrics.registry import METRICS, Metric, metric_for
from e2net_eval.report import stats
from e2net_eval.scores import Evaluation


@dataclass
class Entry:
    """One measured prediction set on one reference set.

    name: configuration (report) or NAME (compare); label: how rows and figures name it;
    source: the provenance every measured row carries (protocol, split, reference);
    meta: provenance columns of tables.csv (config, protocol, profile, seed, split, dataset);
    segments_tumour: False for a model without tumour output (its tumour cells are '-');
    short: a shorter name for paired rows (compare's NAME when its label carries more).
    """

    name: str
    label: str
    evaluation: Evaluation
    source: str
    meta: dict[str, Any] = field(default_factory=dict)
    segments_tumour: bool = True
    short: str | None = None

    @property
    def short_label(self) -> str:
        """How paired rows name the entry (the label unless a shorter name is set)."""
        return self.short or self.label

    @property
    def summary(self) -> dict[str, Any]:
        return self.evaluation.summary

    @property
    def per_case(self) -> pd.DataFrame:
        return self.evaluation.per_case

    def case_ids(self) -> list[str]:
        return self.evaluation.case_ids()

    def value(self, key: str) -> float | None:
        """The set figure at a dotted summary key (`regions.liver.dice_per_case`,
        `tumour_burden.rmse`), as summary.json has it; None when missing or undefined."""
        table = self.evaluation.table
        hit = table.loc[table["key"] == key, "value"]
        if hit.empty or hit.isna().iloc[0]:
            return None
        return float(hit.iloc[0])

    def region_rows(self, region: str) -> pd.DataFrame:
        return self.per_case[self.per_case["region"] == region]

    def values(self, region: str, column: str) -> pd.Series:
        """Per-case values of one per_case.csv column in one region, indexed by case id
        (undefined: NaN)."""
        rows = self.region_rows(region)
        if column not in rows.columns:
            return pd.Series([], dtype=float)
        return pd.Series(
            rows[column].astype("Float64").to_numpy(dtype=float, na_value=np.nan),
            index=rows["case"].to_numpy(dtype=object),
        )

    def interval(self, key: str) -> stats.Interval | None:
        """The 95% bootstrap interval of the set figure at `key`, as the registry's
        `interval` of its metric says (a per-case metric: the mean of its column)."""
        metric = metric_for(key)
        if metric is None or ".pooled." in f".{key}.":
            return None  # a value pooled over the set is no mean over cases
        parts = key.split(".")
        region = parts[1] if parts[0] == "regions" and len(parts) > 2 else None
        if metric.level == "lesion":
            region = LESION_ROW
        how, column = _interval_source(metric)
        if how == "mean" and region is not None and column is not None:
            return stats.bootstrap(self.values(region, column).to_numpy())
        if how == "global_dice" and region is not None:
            rows = self._global_dice_rows(region)
            return None if rows is None else stats.bootstrap(rows, stats.global_dice)
        if how == "rmse_burden":
            tumour = self.region_rows("tumour")
            err = tumour["burden_pred"].astype("Float64") - tumour["burden_ref"].astype("Float64")
            return stats.bootstrap(err.to_numpy(dtype=float, na_value=np.nan), stats.rmse)
        return None

    def _global_dice_rows(self, region: str) -> np.ndarray | None:
        """(intersection, pred voxels, ref voxels) per case; None when the counts are missing
        (an old summary without ``intersection`` gets it back from Dice and the sizes)."""
        rows = self.region_rows(region)
        sizes = rows[["pred_voxels", "ref_voxels"]].astype("Float64")
        if rows.empty or sizes.isna().any().any():
            return None
        size = sizes["pred_voxels"] + sizes["ref_voxels"]
        inter = rows["intersection"].astype("Float64").fillna(rows["dice"] * size / 2.0)
        if inter.isna().any():
            return None
        return np.column_stack([inter.to_numpy(dtype=float), sizes.to_numpy(dtype=float)])


def _interval_source(metric: Metric) -> tuple[str | None, str | None]:
    """(how to resample, per-case column) of a metric's set figure."""
    if metric.level in ("case", "lesion"):
        return "mean", metric.csv
    per_case = METRICS.get(metric.per_case or "")
    return metric.interval, None if per_case is None else per_case.csv


def per_case_column(key: str) -> tuple[str, str] | None:
    """(region, per-case column) behind a summary key whose figure is a mean over cases
    (`regions.tumour.dice_per_case` -> ("tumour", "dice")): what a paired test compares."""
    metric = metric_for(key)
    parts = key.split(".")
    if metric is None or parts[0] != "regions" or len(parts) < 3:
        return None
    how, column = _interval_source(metric)
    return (parts[1], column) if how == "mean" and column else None


def aligned(
    a: Entry, b: Entry, region: str, column: str
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per-case values of two entries on the cases both have (in `a`'s order)."""
    va, vb = a.values(region, column), b.values(region, column)
    common = [c for c in va.index if c in set(vb.index)]
    return common, va.loc[common].to_numpy(dtype=float), vb.loc[common].to_numpy(dtype=float)


@dataclass
class Replicated:
    """One configuration measured in several replicates of a run (each its own split and
    training seed): the entry of each replicate, by replicate index.

    name, label, segments_tumour: as `Entry`; source: the provenance its rows carry (which
    replicates, their seeds, the set); meta: provenance columns of tables.csv.
    """

    name: str
    label: str
    by_replicate: dict[int, Entry]
    source: str
    meta: dict[str, Any] = field(default_factory=dict)
    segments_tumour: bool = True

    @property
    def short_label(self) -> str:
        return self.label

    def values(self, key: str, replicates: list[int] | None = None) -> list[float | None]:
        """The set figure at `key` of each replicate (in `replicates` order, default all);
        None where a replicate lacks it."""
        order = sorted(self.by_replicate) if replicates is None else replicates
        return [self.by_replicate[r].value(key) if r in self.by_replicate else None for r in order]
