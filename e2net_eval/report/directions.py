"""Which way is better for each metric a summary.json holds (reports and `regress` read this).

The metrics stage owns the truth: `e2net_eval.metrics.METRICS[name].higher_is_better`.
Names in a summary are nested (`regions.tumour.assd.mean`, `detection.any_overlap.f1`);
`registry_name` maps a flattened key to the registry's name.
"""

from __future__ import annotations

try:  # the registry of the metrics stage
    from e2net_eval.metrics import METRICS as _REGISTRY
except ImportError:  # pragma: no cover - only before the metrics stage is installed
    _REGISTRY = None

# FALLBACK, used only while `e2net_eval.metrics.METRICS` is missing: the directions of the
# names this module needs, copied from the contract in docs/architecture.md.
_FALLBACK_HIGHER_IS_BETTER: dict[str, bool] = {
    "dice": True,
    "dice_per_case": True,
    "dice_global": True,
    "voe": False,
    "rvd": False,
    "assd": False,
    "rmsd": False,
    "mssd": False,
    "tumour_burden_rmse": False,
    "tumour_burden_max_abs_error": False,
    "detection_precision": True,
    "detection_recall": True,
    "detection_f1": True,
    "detection_any_overlap_precision": True,
    "detection_any_overlap_recall": True,
    "detection_any_overlap_f1": True,
}

#: Metrics whose best value is 0 in either direction: compared on their absolute value.
ABSOLUTE_VALUE_METRICS = frozenset({"rvd"})


def registry_name(key: str) -> str:
    """`liver.dice_per_case` -> `dice_per_case`; `tumour_burden.rmse` -> `tumour_burden_rmse`;
    `detection.any_overlap.f1` -> `detection_any_overlap_f1`; `tumour.assd` -> `assd`."""
    parts = key.split(".")
    if parts[0] in ("tumour_burden", "detection"):
        return "_".join(parts)
    return parts[-1]


def higher_is_better(key: str) -> bool | None:
    """Direction of a flattened summary key, or None when no metric of that name is known."""
    name = registry_name(key)
    if _REGISTRY is not None:
        info = _REGISTRY.get(name)
        return None if info is None else bool(info.higher_is_better)
    return _FALLBACK_HIGHER_IS_BETTER.get(name)


def uses_absolute_value(key: str) -> bool:
    """True for signed metrics (RVD) whose magnitude is what gets better or worse."""
    return registry_name(key) in ABSOLUTE_VALUE_METRICS
