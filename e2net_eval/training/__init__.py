"""Training stage: the job and its settings, the Trainer, resume rules, turns on shared files,
slice cache, slice datasets, checkpoints, schedule, bench.

``from e2net_eval.training import train`` (imported lazily, so the CLI starts without torch).
"""

from __future__ import annotations

__all__ = ["prepare_run", "train"]


def __getattr__(name: str):
    if name == "train":
        from e2net_eval.training.trainer import train

        return train
    if name == "prepare_run":
        from e2net_eval.training.turns import prepare_run

        return prepare_run
    raise AttributeError(name)
