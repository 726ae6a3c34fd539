"""Tasks: the per-model glue between a network, its data, its loss and its metrics.

The training, evaluation and prediction CLIs are generic; everything that depends on
the model (which batch keys feed it, the loss, how predictions are scored and drawn)
sits behind the `Task` protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Protocol

import jax
import ml_collections
import numpy as np
from flax import nnx


class Task(Protocol):
    name: str
    # Batch keys fed to the network (cast to the compute dtype in mixed precision).
    input_keys: tuple[str, ...]
    # Validation metric for the best checkpoint and the plateau schedule, and its direction.
    best_metric: str
    best_mode: str

    def model_buffers(self) -> dict[str, np.ndarray]:
        """Initial model state that comes from the data (e.g. TRG's mean face)."""

    def augment(self, batch: dict[str, jax.Array], key: jax.Array) -> dict[str, jax.Array]:
        """The training augmentation of a training batch, inside the jitted step (pure in `key`)."""

    def loss(self, model: nnx.Module, batch: dict[str, jax.Array]) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Scalar training loss and its named terms (model in train mode)."""

    def predict(self, model: nnx.Module, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Per-sample predictions, every leaf with a leading batch axis (model in eval mode)."""

    def evaluate(self, predictions: dict[str, np.ndarray], batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per-sample metric values (numpy), each (B,)."""

    def summarize(self, per_sample: dict[str, np.ndarray]) -> dict[str, float]:
        """Aggregate per-sample metrics into the reported table row."""

    def fit_baseline(self, batches: Iterable[dict[str, np.ndarray]]) -> None:
        """Fits the mean-prediction baseline on unaugmented training batches."""

    def baseline(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Predictions of the mean-prediction baseline for a batch (same keys as `predict`)."""

    def draw(self, batch: dict[str, np.ndarray], predictions: dict[str, np.ndarray], path: Path) -> None:
        """Writes a PNG sheet of predictions drawn over the input images."""


def make_task(config: ml_collections.ConfigDict, **kwargs: Any) -> Task:
    name = config.model.name
    if name == "trg":
        from jaxhead.tasks.trg import TRGTask

        return TRGTask(config, **kwargs)
    if name == "dad3dnet":
        from jaxhead.tasks.dad3dnet import DAD3DNetTask

        return DAD3DNetTask(config, **kwargs)
    raise ValueError(f"no task for config.model.name={name!r}")
