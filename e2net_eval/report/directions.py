"""Which way is better for each metric a summary.json holds (reports and `regress` read this).

The metrics stage owns the truth: `e2net_eval.metrics.METRICS[name].higher_is_better`.
Names in a summary are nested (`regions.tumour.assd.mean`, `detection.any_overlap.f1`);
`registry_names` maps a flattened key to the registry's name.
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
    "lesion_dice": True,
}

#: Metrics whose best value is 0 in either direction: compared on their absolute value.
ABSOLUTE_VALUE_METRICS = frozenset({"rvd"})


def registry_names(key: str) -> list[str]:
    """Registry names to try for a flattened key, most specific first:
    `liver.dice_per_case` -> [`dice_per_case`]; `tumour_burden.rmse` -> [`tumour_burden_rmse`,
    `rmse`]; `detection.any_overlap.f1` -> [`detection_any_overlap_f1`, `f1`];
    `detection.lesion_dice` -> [`detection_lesion_dice`, `lesion_dice`]."""
    parts = key.rsplit("/", 1)[-1].split(".")
    if parts[0] in ("tumour_burden", "detection"):
        return ["_".join(parts), parts[-1]]
    return [parts[-1]]


def higher_is_better(key: str) -> bool | None:
    """Direction of a flattened summary key, or None when no metric of that name is known."""
    for name in registry_names(key):
        if _REGISTRY is not None:
            info = _REGISTRY.get(name)
            if info is not None:
                return bool(info.higher_is_better)
        elif name in _FALLBACK_HIGHER_IS_BETTER:
            return _FALLBACK_HIGHER_IS_BETTER[name]
    return None


def uses_absolute_value(key: str) -> bool:
    """True for signed metrics (RVD) whose magnitude is what gets better or worse."""
    return registry_names(key)[0] in ABSOLUTE_VALUE_METRICS
