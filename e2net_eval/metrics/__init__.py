"""Scoring: pure metric functions, case scoring, set accumulation and `evaluate`.

Definitions and empty-mask rules: docs/metrics.md (protocol.md "Scores"). The registry
(`METRICS`, `Metric`) and `evaluate` import eagerly and are light; the scoring functions
(numpy, scipy, edt, cc3d) load on first use, so `regress` reads directions without them.
"""

from __future__ import annotations

import importlib

from e2net_eval.metrics.evaluate import EvaluateOptions, evaluate
from e2net_eval.metrics.registry import METRICS, Metric

#: module -> the names it gives this package, loaded on first access
_MODULES = {
    "accumulate": ("SetAccumulator", "stats"),
    "burden": ("BurdenAccumulator", "tumour_burden"),
    "case": ("CaseScores", "RegionScores", "ScoredCase", "score_case"),
    "lesions": ("DetectionCounts", "LesionMatch", "match_lesions"),
    "overlap": ("dice", "rvd", "voe"),
    "surface": ("assd", "mssd", "rmsd", "surface_distances", "hd95", "hd95_pooled", "masd", "nsd"),
    "panoptic": ("PanopticCounts", "panoptic_quality"),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}

__all__ = ["METRICS", "EvaluateOptions", "Metric", "evaluate", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
