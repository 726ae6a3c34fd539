"""The data side of a run: build the datasets on first use, and hand out batches.

Process 0 builds a missing dataset (with progress) while the others wait, then every
process reads its own shard of each split.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterator

import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from jax.experimental import multihost_utils

from data_pipelines.build import default_data_dir, ensure_built
from data_pipelines.pipelines import make_dataset, num_train_examples, training_datasets
from jaxhead.tasks import Transform


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What the loop needs to know about the data.

    num_examples: the split sizes of `config.data.dataset`.
    num_train: examples in one training epoch, over every dataset of the mixture.
    """

    num_examples: dict[str, int]
    num_train: int


def data_dir(config: ml_collections.ConfigDict) -> str:
    return config.data.data_dir or default_data_dir()


def default_builder_config(dataset: str) -> str:
    """The builder config `jaxhead.evaluate --dataset NAME` uses when none is given."""
    return "default" if dataset == "synthetic_heads" else ""


def prepare(config: ml_collections.ConfigDict, splits: tuple[str, ...] | None = None) -> DataInfo:
    """Builds missing datasets (process 0; the whole training mixture when `splits` has "train"),
    then returns the split sizes."""
    splits = splits or ("train", config.eval.split, *config.eval.extra_splits)
    root = data_dir(config)
    needed = training_datasets(config.data) if "train" in splits else training_datasets(config.data)[:1]
    if jax.process_index() == 0:
        for name, builder_config in needed:
            ensure_built(name, builder_config, root, config.data.get("manual_dir") or None)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices("datasets built")
    name, builder_config = config.data.dataset, config.data.builder_config or None
    full_name = f"{name}/{builder_config}" if builder_config else name
    sources = tfds.data_source(full_name, data_dir=root)
    missing = [s for s in splits if s not in sources]
    if missing:
        raise ValueError(f"dataset {full_name} in {root} has no split {missing}; it has {sorted(sources)}")
    num_train = num_train_examples(config.data) if "train" in splits else 0
    return DataInfo(num_examples={s: len(sources[s]) for s in sources}, num_train=num_train)


def train_batches(config: ml_collections.ConfigDict, local_batch_size: int, transform: Transform) -> Any:
    """The endless, shuffled, augmented training stream (a checkpointable grain dataset); close its
    iterator when done (`contextlib.closing`) to stop the worker processes."""
    return make_dataset(config, "train", transform, train=True, batch_size=local_batch_size, seed=config.seed)


@contextlib.contextmanager
def eval_batches(
    config: ml_collections.ConfigDict,
    local_batch_size: int,
    transform: Transform,
    split: str | None = None,
) -> Iterator[Iterator[dict[str, np.ndarray]]]:
    """One unaugmented pass over `split` (default `config.eval.split`); the last batch may be smaller. A context manager: on leaving it the pipeline's worker
    processes stop and free their in-flight shared memory, even when the pass was cut short."""
    split = split or config.eval.split
    it = iter(make_dataset(config, split, transform, train=False, batch_size=local_batch_size, seed=0, num_epochs=1))
    try:
        yield it
    finally:
        it.close()
