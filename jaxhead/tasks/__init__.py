"""Tasks: the per-model glue between a network, its data, its loss and its metrics.

The training, evaluation and prediction CLIs are generic; everything that depends on
the model (its assets, the input transform, which batch keys feed it, the loss, how
predictions are scored and drawn, photo pre- and post-processing) sits behind the `Task`
protocol. A model plugs in by registering its task (`@register_task(name)`) and its network
(`jaxhead.models.register_model`) under `config.model.name`; built-in ones live in
`jaxhead.tasks.<name>` and `jaxhead.models.<name>` and are imported by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple, Protocol

import jax
import ml_collections
import numpy as np
from flax import nnx

from jaxhead.registry import Registry

# The per-example preprocessing of the input pipeline: (example, rng or None: no augmentation) -> example.
Transform = Callable[[dict, np.random.Generator | None], dict]


class Task(Protocol):
    """What a model brings to the generic loop and CLIs. A task owns its assets (topology,
    FLAME model), loaded once in `__init__(config)` and handed to the input pipeline."""

    name: str
    # Batch keys fed to the network (cast to the compute dtype in mixed precision).
    input_keys: tuple[str, ...]
    # Validation metric for the best checkpoint and the plateau schedule, and its direction.
    best_metric: str
    best_mode: str
    # Whether predictions on a photo need camera intrinsics (else --focal/--K are ignored).
    uses_intrinsics: bool

    def transform(self) -> Transform:
        """The per-example preprocessing of the input pipeline: (example, rng or None) -> example."""

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

    def draw_example(self, ax: Any, batch: dict[str, np.ndarray], i: int) -> None:
        """Draws example i of a preprocessed batch with its labels (contact sheets)."""

    def photo_inputs(self, image: np.ndarray, box: np.ndarray, K: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
        """A photo (H, W, 3) uint8, face box [x0, y0, x1, y1] and K (3, 3) -> (a batch of one, context)."""

    def photo_outputs(self, predictions: dict[str, np.ndarray], context: dict) -> PhotoResult:
        """Predictions of `photo_inputs`' batch (numpy, batch of one) -> the result in image terms."""

    def mesh_faces(self) -> np.ndarray:
        """(F, 3) triangles of `PhotoResult.vertices`."""

    def draw_photo(self, ax: Any, result: PhotoResult) -> None:
        """Draws a photo result over the photo already shown on `ax`."""


class PhotoResult(NamedTuple):
    """One face of a photo: JSON-ready values, mesh vertices (N, 3), and what `draw_photo` needs."""

    values: dict[str, Any]
    vertices: np.ndarray
    drawing: dict[str, np.ndarray]


_TASKS = Registry("jaxhead.tasks", "task")
# Class decorator: `@register_task("trg")` makes `make_task` build it for config.model.name.
register_task = _TASKS.register


def make_task(config: ml_collections.ConfigDict) -> Task:
    """The task of `config.model.name`, with its assets loaded."""
    return _TASKS.get(config.model.name)(config)
