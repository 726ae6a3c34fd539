"""grain input pipelines: TFDS array_record source -> shuffle -> repeat -> random_map (the model's
preprocessing) -> batch -> this process's batches, with worker processes.

Deterministic for a given seed; the iterator of `make_dataset(...)` (an IterDataset) has
`get_state()` / `set_state()` for exact resume.

Multi-process layout: with P processes and a local batch of L rows, the global batch k is
the k-th run of P*L examples of the one shuffled, augmented stream, and process p reads rows
[p*L, (p+1)*L) of it (the rows its devices hold, as `jax.devices()` lists them process by
process). Global batches therefore do not depend on the process count, and a multi-host run
trains on exactly the batches of a single-host one.
"""

from __future__ import annotations

import atexit
from typing import Any, Callable

import grain
from absl import flags
import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from data_pipelines.build import default_data_dir
from data_pipelines.worker_lifetime import worker_init_fn

# grain's internal module: the consumer side of its shared-memory batches (no public handle).
from grain._src.python.ipc.shared_memory_array import SharedMemoryArray


class _Augment(grain.transforms.RandomMap):
    def __init__(self, fn: Callable[[dict, np.random.Generator | None], dict]):
        self.fn = fn

    def random_map(self, element: dict, rng: np.random.Generator) -> dict:
        return self.fn(element, rng)


class _Map(grain.transforms.Map):
    """`fn(element, *args)`: the decoded example for device augmentation (`transform.host_fields`),
    or the unaugmented one (`transform` with rng None)."""

    def __init__(self, fn: Callable[..., dict], *args: Any):
        self.fn, self.args = fn, args

    def map(self, element: dict) -> dict:
        return self.fn(element, *self.args)


@atexit.register
def _finish_shared_memory_unlinks() -> None:
    """With worker processes, grain unlinks each consumed batch's shared memory on a background
    thread pool. Blocks still queued there at exit would be reported as leaked (and removed) by
    Python's resource tracker, so further unlinks run inline and the queue is drained first."""
    pool = SharedMemoryArray._del_thread_pool
    if pool is not None:
        SharedMemoryArray._del_thread_pool = None
        pool.close()
        pool.join()


def source(name: str, builder_config: str | None, split: str, data_dir: str) -> Any:
    import data_pipelines.builders as builders

    builders.builder_class(name)  # registers the builder
    full = f"{name}/{builder_config}" if builder_config else name
    sources = tfds.data_source(full, data_dir=data_dir)
    if split not in sources:
        raise ValueError(f"dataset {full} in {data_dir} has no split {split!r}; it has {sorted(sources)}")
    return sources[split]


def training_datasets(data: ml_collections.ConfigDict) -> list[tuple[str, str | None]]:
    """(name, builder config) of each dataset of the training mixture: `data.dataset` (with
    `data.builder_config`), then each of `data.extra_datasets`, written "name" or "name/config"."""
    names = [(data.dataset, data.builder_config or None)]
    for entry in data.get("extra_datasets", ()) or ():
        name, _, builder_config = str(entry).partition("/")
        names.append((name, builder_config or None))
    return names


def num_train_examples(data: ml_collections.ConfigDict) -> int:
    """Examples in one epoch of the training mixture: the sum of its datasets' train splits, as
    the official TRG code's concatenated ARKitFace + 300W-LP dataset counts them."""
    root = data.data_dir or default_data_dir()
    return sum(len(source(n, c, "train", root)) for n, c in training_datasets(data))


def process_batches(batches: grain.MapDataset, *, train: bool) -> grain.MapDataset:
    """This process's local batches: every P-th batch of `batches`, starting at its index.

    Training keeps whole global batches only. An evaluation pass ends with a partial global
    batch, so a process may get a smaller last batch or none; the evaluation loop pads for that.
    """
    num = jax.process_count()
    if num == 1:
        return batches
    if train:
        batches = batches[: len(batches) // num * num]
    return batches[jax.process_index() :: num]


def make_dataset(
    config: ml_collections.ConfigDict,
    split: str,
    transform: Callable[[dict, np.random.Generator | None], dict],
    *,
    train: bool,
    batch_size: int,
    seed: int,
    num_epochs: int | None = None,
) -> grain.IterDataset:
    """Batches of this process's shard of `split`, each example through `transform(example, rng)`
    (rng None: unaugmented; the model's task provides it, e.g. `jaxhead.tasks.trg.TRGTask.transform`).

    train=True: shuffled, augmented, repeated (num_epochs None: forever), full batches only, with
    `config.data.extra_datasets` mixed in by size; with `config.data.device_augment` the batches are
    the decoded, unaugmented examples (`transform.host_fields`) that the train step augments.
    train=False: one ordered, unaugmented pass (augmented only where the config asks, e.g. DAD-3DNet's
    `val_jitter`); the last batch may be smaller.
    """
    data = config.data
    root = data.data_dir or default_data_dir()
    names = training_datasets(data) if train else [(data.dataset, data.builder_config or None)]
    parts = []
    for name, builder_config in names:
        ds = grain.MapDataset.source(source(name, builder_config, split, root))
        if train and data.get("device_augment", False):
            ds = ds.seed(seed).shuffle().repeat(num_epochs).map(_Map(transform.host_fields))
        elif train:
            ds = ds.seed(seed).shuffle().repeat(num_epochs).random_map(_Augment(transform))
        elif data.get("val_jitter", False):
            ds = ds.seed(seed).random_map(_Augment(transform))
        else:
            ds = ds.map(_Map(transform, None))
        parts.append(ds)
    if len(parts) > 1:
        sizes = [len(source(n, c, split, root)) for n, c in names]
        ds = grain.MapDataset.mix(parts, weights=[s / sum(sizes) for s in sizes])
    else:
        ds = parts[0]
    ds = process_batches(ds.batch(batch_size, drop_remainder=train), train=train)
    it = ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=4))
    if data.num_workers > 0:
        if not flags.FLAGS.is_parsed():  # grain's workers read absl flags; a library caller has none
            flags.FLAGS.mark_as_parsed()
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=data.num_workers), worker_init_fn=worker_init_fn())
    return it
