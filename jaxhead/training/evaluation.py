"""Evaluation over a whole split, shared by training (periodic) and `jaxhead.evaluate`.

The last batch of a split is padded to the full batch size (the mesh needs equal
shards) and the padded rows are dropped again, so every example is scored once.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, PartitionSpec

from jaxhead.tasks import Task
from jaxhead.training.sharding import DATA_AXIS, shard_batch


def pad_batch(batch: dict[str, np.ndarray], size: int) -> tuple[dict[str, np.ndarray], int]:
    """Repeats the last row until every array has `size` rows; returns (batch, real rows)."""
    n = len(next(iter(batch.values())))
    if n == size:
        return batch, n
    pad = lambda x: np.concatenate([x, np.repeat(x[-1:], size - n, axis=0)], axis=0)  # noqa: E731
    return {k: pad(np.asarray(v)) for k, v in batch.items()}, n


def to_host(tree: Any, mesh: Mesh) -> Any:
    """Global batch-sharded arrays -> this process's rows as numpy."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, tree)
    local = multihost_utils.global_array_to_host_local_array(tree, mesh, PartitionSpec(DATA_AXIS))
    return jax.tree.map(np.asarray, local)


def evaluate_split(
    eval_step: Callable,
    params: Any,
    rest: Any,
    batches: Iterable[dict[str, np.ndarray]],
    task: Task,
    mesh: Mesh,
    batch_size: int,
    *,
    max_batches: int | None = None,
    keep_first: int = 0,
    with_baseline: bool = False,
) -> dict[str, Any]:
    """Scores predictions (and optionally the mean-prediction baseline) over `batches`.

    Args:
      batch_size: this process's batch size (the padding target).
      keep_first: how many examples (batch + predictions) to keep for drawing.

    Returns:
      {"summary": {...}, "per_sample": {...}, "baseline": {...} (if asked),
       "examples": (batch, predictions) of the first `keep_first` examples}.
    """
    per_sample: dict[str, list[np.ndarray]] = {}
    base_per_sample: dict[str, list[np.ndarray]] = {}
    examples = None
    for i, batch in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        padded, n = pad_batch(batch, batch_size)
        preds = to_host(eval_step(params, rest, shard_batch(padded, mesh)), mesh)
        preds = jax.tree.map(lambda x: x[:n], preds)
        host = {k: np.asarray(v)[:n] for k, v in batch.items()}
        for k, v in task.evaluate(preds, host).items():
            per_sample.setdefault(k, []).append(v)
        if with_baseline:
            for k, v in task.evaluate(task.baseline(host), host).items():
                base_per_sample.setdefault(k, []).append(v)
        if examples is None and keep_first:
            examples = (
                {k: v[:keep_first] for k, v in host.items()},
                jax.tree.map(lambda x: x[:keep_first], preds),
            )

    def gather(d: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
        out = {k: np.concatenate(v) for k, v in d.items()}
        if jax.process_count() > 1:
            out = multihost_utils.process_allgather(out, tiled=True)
        return out

    if not per_sample:
        raise ValueError("the evaluation split yielded no examples")
    result: dict[str, Any] = {"per_sample": gather(per_sample), "examples": examples}
    result["summary"] = task.summarize(result["per_sample"])
    if with_baseline:
        result["baseline"] = task.summarize(gather(base_per_sample))
    return result
