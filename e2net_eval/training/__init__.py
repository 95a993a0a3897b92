"""Training stage: slice cache, slice datasets, the Trainer, checkpoints, schedule, bench.

``from e2net_eval.training import train`` (imported lazily, so the CLI starts without torch).
"""

from __future__ import annotations

__all__ = ["prepare_run", "train"]


def __getattr__(name: str):
    if name in __all__:
        from e2net_eval.training import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
