"""Scoring: pure metric functions, case scoring, set accumulation and `evaluate`.

Definitions and empty-mask rules: docs/metrics.md (protocol.md "Scores").
"""

from __future__ import annotations

from e2net_eval.metrics.accumulate import SetAccumulator, stats
from e2net_eval.metrics.burden import BurdenAccumulator, tumour_burden
from e2net_eval.metrics.case import CaseScores, RegionScores, score_case
from e2net_eval.metrics.evaluate import evaluate, find_prediction
from e2net_eval.metrics.lesions import DetectionCounts, LesionMatch, match_lesions
from e2net_eval.metrics.overlap import dice, rvd, voe
from e2net_eval.metrics.registry import METRICS, MetricInfo
from e2net_eval.metrics.surface import assd, mssd, rmsd, surface, surface_distances

__all__ = [
    "METRICS",
    "BurdenAccumulator",
    "CaseScores",
    "DetectionCounts",
    "LesionMatch",
    "MetricInfo",
    "RegionScores",
    "SetAccumulator",
    "assd",
    "dice",
    "evaluate",
    "find_prediction",
    "match_lesions",
    "mssd",
    "rmsd",
    "rvd",
    "score_case",
    "stats",
    "surface",
    "surface_distances",
    "tumour_burden",
    "voe",
]
