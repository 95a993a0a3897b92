"""Learning-rate schedule of the paper: divide by 10 once the validation signal is stable
(`patience` epochs without a relative improvement of `threshold`); the plateau reached at the
twice-reduced rate stops training (our reading of "after decreasing the learning rate twice,
we stop training": docs/training.md, "Schedule and profiles").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

NONE, DECREASE, STOP = "none", "decrease", "stop"


@dataclass
class Plateau:
    """Plateau detector with a decrease counter; `step` returns none, decrease or stop."""

    patience: int = 3
    threshold: float = 1e-4
    factor: float = 0.1
    max_decreases: int = 2
    best: float = float("inf")
    bad_epochs: int = 0
    decreases: int = 0

    def step(self, val_loss: float) -> str:
        """Feed one epoch's validation loss; say what the trainer should do."""
        margin = 0.0 if math.isinf(self.best) else abs(self.best) * self.threshold
        if val_loss < self.best - margin:
            self.best = val_loss
            self.bad_epochs = 0
            return NONE
        self.bad_epochs += 1
        if self.bad_epochs < self.patience:
            return NONE
        self.bad_epochs = 0
        if self.decreases >= self.max_decreases:
            return STOP
        self.decreases += 1
        return DECREASE

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
