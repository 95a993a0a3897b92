"""Which way is better for each metric a summary.json holds (reports and `regress` read this).

The metric registry owns the truth (`e2net_eval.metrics.registry`: `higher_is_better`,
`absolute`). Names in a summary are nested (`regions.tumour.assd.mean`,
`detection.any_overlap.f1`); `registry_names` maps a flattened key to the registry's name.
"""

from __future__ import annotations

from e2net_eval.metrics.registry import metric_for, registry_names

__all__ = ["higher_is_better", "registry_names", "uses_absolute_value"]


def higher_is_better(key: str) -> bool | None:
    """Direction of a flattened summary key, or None when no metric of that name is known."""
    metric = metric_for(key)
    return None if metric is None else bool(metric.higher_is_better)


def uses_absolute_value(key: str) -> bool:
    """True for signed metrics (RVD) whose magnitude is what gets better or worse."""
    metric = metric_for(key)
    return metric is not None and metric.absolute
