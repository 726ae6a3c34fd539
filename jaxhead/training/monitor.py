"""Decisions on the monitored validation metric: what counts as better, and early stopping.

One rule, `improves`, serves the plateau schedule (`jaxhead.training.optimizer.Plateau`,
torch's ReduceLROnPlateau: relative threshold) and early stopping (Lightning's EarlyStopping
with min_delta 0: any strict improvement).
"""

from __future__ import annotations

import dataclasses
from typing import Any


def improves(value: float, best: float | None, mode: str, rel_threshold: float = 0.0) -> bool:
    """Whether `value` beats `best` (None: nothing yet) by more than `rel_threshold` of it."""
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    if best is None:
        return True
    if mode == "min":
        return value < best * (1.0 - rel_threshold)
    return value > best * (1.0 + rel_threshold)


@dataclasses.dataclass
class EarlyStopping:
    """Stops after `patience` evaluations without a better value (0 disables it).

    `stopped_at` is the step at which it stopped; it is part of the trainer state, so a run
    that stopped early stays stopped when it is resumed.
    """

    patience: int
    mode: str
    best: float | None = None
    num_bad: int = 0
    stopped_at: int | None = None

    def update(self, step: int, value: float) -> bool:
        """Records the evaluation at `step`; True when training should stop there."""
        if improves(value, self.best, self.mode):
            self.best, self.num_bad = value, 0
        else:
            self.num_bad += 1
        if self.patience > 0 and self.num_bad >= self.patience:
            self.stopped_at = step
        return self.stopped_at is not None

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "num_bad": self.num_bad, "stopped_at": self.stopped_at}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        state = state or {}
        self.best, self.num_bad = state.get("best"), int(state.get("num_bad", 0))
        self.stopped_at = state.get("stopped_at")
