"""Evaluation over a whole split, shared by training (periodic) and `jaxhead.evaluate`.

Every process runs every jitted eval step, so all of them step through the split in lock
step: batches are padded to the full local batch size, a process that has run out repeats
its last batch with no real rows, and only the real rows are scored, once each, in the
order of the global batches (the order a single process sees).
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterable, Iterator

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, PartitionSpec

from jaxhead.tasks import Task
from jaxhead.training.sharding import DATA_AXIS, shard_batch


_BATCH = "__batch_index"  # the global batch each gathered row came from


def pad_batch(batch: dict[str, np.ndarray], size: int) -> tuple[dict[str, np.ndarray], int]:
    """Repeats the last row until every array has `size` rows; returns (batch, real rows)."""
    n = len(next(iter(batch.values())))
    if n == size:
        return batch, n
    pad = lambda x: np.concatenate([x, np.repeat(x[-1:], size - n, axis=0)], axis=0)  # noqa: E731
    return {k: pad(np.asarray(v)) for k, v in batch.items()}, n


def lockstep_batches(
    batches: Iterable[dict[str, np.ndarray]], batch_size: int
) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    """(batch padded to `batch_size` rows, its real rows) until every process has run out.

    A process that runs out before the others yields its last batch again with 0 real rows.
    Raises (on every process alike, so none waits for the others) when a process has no
    example at all.
    """
    it = iter(batches)
    last = None
    while True:
        batch = next(it, None)
        if jax.process_count() == 1:
            if batch is None:
                return
            yield pad_batch(batch, batch_size)
            continue
        has = [batch is not None, batch is not None or last is not None]
        status = multihost_utils.process_allgather(np.asarray(has))  # (processes, 2)
        if not status[:, 0].any():
            return
        if not status[:, 1].all():
            raise ValueError(
                f"processes {np.flatnonzero(~status[:, 1]).tolist()} got no example of the split: it has fewer "
                f"rows than the global batch needs to give every process one; lower the evaluation batch size"
            )
        if batch is None:
            yield last, 0
        else:
            last, n = pad_batch(batch, batch_size)
            yield last, n


def _allgather_rows(values: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per-batch padded rows of every process -> the real rows, in global batch order.

    Args:
      values: each (num_batches, batch_size, ...), any dtype (gathered as raw bytes, so
        float64 stays float64 without jax_enable_x64).
      mask: (num_batches, batch_size) bool, True on real rows.
    """
    if jax.process_count() > 1:
        raw = {k: np.ascontiguousarray(v).reshape(v.shape[:2] + (-1,)).view(np.uint8) for k, v in values.items()}
        raw, mask = multihost_utils.process_allgather((raw, mask))  # (processes, num_batches, batch_size, ...)
        values = {
            k: np.swapaxes(raw[k].view(v.dtype).reshape(raw[k].shape[:3] + v.shape[2:]), 0, 1)
            for k, v in values.items()
        }
        mask = np.swapaxes(mask, 0, 1)
    return {k: v[mask] for k, v in values.items()}


def global_rows(
    batches: Iterable[dict[str, np.ndarray]], batch_size: int
) -> Iterator[dict[str, np.ndarray]]:
    """The numeric rows of every process's batches, one global batch at a time (e.g. to fit
    the baseline on the same examples whatever the process count)."""
    for padded, n in lockstep_batches(batches, batch_size):
        numeric = {k: np.asarray(v)[None] for k, v in padded.items() if np.asarray(v).dtype.kind not in "OSU"}
        yield _allgather_rows(numeric, (np.arange(batch_size) < n)[None])


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
    monitor_batches: int | None = None,
    keep_first: int = 0,
    with_baseline: bool = False,
) -> dict[str, Any]:
    """Scores predictions (and optionally the mean-prediction baseline) over `batches`.

    Args:
      batches: this process's batches (`jaxhead.training.data.eval_batches`).
      batch_size: this process's batch size (the padding target).
      max_batches: at most this many global batches.
      monitor_batches: also summarise the first this many global batches alone ("monitor"): the
        fixed subset that model selection compares at every evaluation (None: the whole pass).
      keep_first: how many examples (batch + predictions) of process 0 to keep for drawing.

    Returns:
      {"summary": {...}, "monitor": {...}, "per_sample": {...}, "baseline": {...} (if asked),
       "examples": (batch, predictions) of the first `keep_first` examples, or None}.
    """
    per_sample: dict[str, list[np.ndarray]] = {}
    base_per_sample: dict[str, list[np.ndarray]] = {}
    masks: list[np.ndarray] = []
    examples = None
    for padded, n in itertools.islice(lockstep_batches(batches, batch_size), max_batches):
        preds = to_host(eval_step(params, rest, shard_batch(padded, mesh)), mesh)
        # Padded rows are scored too (every process keeps equal shapes) and dropped by the mask.
        for k, v in task.evaluate(preds, padded).items():
            per_sample.setdefault(k, []).append(v)
        if with_baseline:
            for k, v in task.evaluate(task.baseline(padded), padded).items():
                base_per_sample.setdefault(k, []).append(v)
        masks.append(np.arange(batch_size) < n)
        if examples is None and keep_first and n:
            keep = min(keep_first, n)
            examples = (
                {k: np.asarray(v)[:keep] for k, v in padded.items()},
                jax.tree.map(lambda x: x[:keep], preds),
            )

    if not masks:
        raise ValueError("the evaluation split yielded no examples")

    def gather(d: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
        return _allgather_rows({k: np.stack(v) for k, v in d.items()}, np.stack(masks))

    rows = gather({**per_sample, _BATCH: [np.full(batch_size, i) for i in range(len(masks))]})
    batch_of_row = rows.pop(_BATCH)
    result: dict[str, Any] = {"per_sample": rows, "examples": examples, "summary": task.summarize(rows)}
    result["monitor"] = result["summary"]
    if monitor_batches and monitor_batches < len(masks):
        result["monitor"] = task.summarize({k: v[batch_of_row < monitor_batches] for k, v in rows.items()})
    if with_baseline:
        result["baseline"] = task.summarize(gather(base_per_sample))
    return result
