"""Training stage: the job and its settings, the Trainer, resume rules, turns on shared files,
slice cache, slice datasets, checkpoints, schedule, bench.

``from e2net_eval.training import train`` (imported lazily, so the CLI starts without torch).
"""

from __future__ import annotations

import importlib

_LAZY = {"train": "e2net_eval.training.trainer", "prepare_run": "e2net_eval.training.turns"}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
