"""Which way is better for each metric a summary.json holds (reports and `regress` read this).

The metrics stage owns the truth: `e2net_eval.metrics.METRICS[name].higher_is_better`.
Names in a summary are nested (`regions.tumour.assd.mean`, `detection.any_overlap.f1`);
`registry_names` maps a flattened key to the registry's name.
"""

from __future__ import annotations

from e2net_eval.metrics import METRICS

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
        info = METRICS.get(name)
        if info is not None:
            return bool(info.higher_is_better)
    return None


def uses_absolute_value(key: str) -> bool:
    """True for signed metrics (RVD) whose magnitude is what gets better or worse."""
    return registry_names(key)[0] in ABSOLUTE_VALUE_METRICS
