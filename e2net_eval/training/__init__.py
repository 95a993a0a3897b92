"""Training stage: slice cache, slice datasets, the Trainer, checkpoints, schedule, bench.

``from e2net_eval.training import train`` (imported lazily, so the CLI starts without torch).
"""

from __future__ import annotations

__all__ = ["train"]


def __getattr__(name: str):
    if name == "train":
        from e2net_eval.training.trainer import train

        return train
    raise AttributeError(name)
