"""Scoring: pure metric functions, case scoring, set accumulation and `evaluate`.

Definitions and empty-mask rules: docs/metrics.md (protocol.md "Scores"). The registry
(`METRICS`, `Metric`) and `evaluate` import eagerly and are light; the scoring functions
(numpy, scipy, edt, cc3d) load on first use, so `regress` reads directions without them.
"""

from __future__ import annotations

import importlib

from e2net_eval.metrics.evaluate import EvaluateOptions, evaluate, find_prediction
from e2net_eval.metrics.registry import METRICS, Metric

_LAZY = {
    "SetAccumulator": "accumulate",
    "stats": "accumulate",
    "BurdenAccumulator": "burden",
    "tumour_burden": "burden",
    "CaseScores": "case",
    "RegionScores": "case",
    "ScoredCase": "case",
    "score_case": "case",
    "DetectionCounts": "lesions",
    "LesionMatch": "lesions",
    "match_lesions": "lesions",
    "dice": "overlap",
    "rvd": "overlap",
    "voe": "overlap",
    "assd": "surface",
    "mssd": "surface",
    "rmsd": "surface",
    "surface_distances": "surface",
    "hd95": "surface",
    "hd95_pooled": "surface",
    "masd": "surface",
    "nsd": "surface",
    "PanopticCounts": "panoptic",
    "panoptic_quality": "panoptic",
}

__all__ = ["METRICS", "EvaluateOptions", "Metric", "evaluate", "find_prediction", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
