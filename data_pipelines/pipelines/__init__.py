"""grain input pipelines: TFDS array_record source -> shard by process -> shuffle -> repeat ->
random_map (the model's preprocessing) -> batch, with worker processes.

Deterministic for a given seed; the iterator of `make_dataset(...)` (an IterDataset) has
`get_state()` / `set_state()` for exact resume.
"""

from __future__ import annotations

from typing import Any, Callable

import grain
from absl import flags
import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from data_pipelines.build import default_data_dir


class _Augment(grain.transforms.RandomMap):
    def __init__(self, fn: Callable[[dict, np.random.Generator | None], dict]):
        self.fn = fn

    def random_map(self, element: dict, rng: np.random.Generator) -> dict:
        return self.fn(element, rng)


class _Host(grain.transforms.Map):
    """The unaugmented decoded example for device augmentation (`transform.host_fields`)."""

    def __init__(self, fn: Callable[[dict], dict]):
        self.fn = fn

    def map(self, element: dict) -> dict:
        return self.fn(element)


class _Plain(grain.transforms.Map):
    def __init__(self, fn: Callable[[dict, np.random.Generator | None], dict]):
        self.fn = fn

    def map(self, element: dict) -> dict:
        return self.fn(element, None)


def make_transform(config: ml_collections.ConfigDict) -> Callable[[dict, np.random.Generator | None], dict]:
    """The per-example preprocessing of `config.model.name` (rng None: no augmentation)."""
    if config.model.name == "trg":
        from data_pipelines.pipelines.trg import TRGTransform
        from data_pipelines.topology import load_topology

        return TRGTransform(config.data, load_topology(config.data, config.model))
    if config.model.name == "dad3dnet":
        from data_pipelines.pipelines.dad3dnet import DAD3DNetTransform
        from jaxhead.metrics.dad3dheads import LandmarkEmbedding
        from jaxhead.tasks.dad3dnet import load_flame_model

        return DAD3DNetTransform(config.data, LandmarkEmbedding.from_flame(load_flame_model(config)))
    raise ValueError(f"no input pipeline for model {config.model.name!r}")


def source(name: str, builder_config: str | None, split: str, data_dir: str) -> Any:
    import data_pipelines.builders as builders

    builders.builder_class(name)  # registers the builder
    full = f"{name}/{builder_config}" if builder_config else name
    sources = tfds.data_source(full, data_dir=data_dir)
    if split not in sources:
        raise ValueError(f"dataset {full} in {data_dir} has no split {split!r}; it has {sorted(sources)}")
    return sources[split]


def make_dataset(
    config: ml_collections.ConfigDict,
    split: str,
    *,
    train: bool,
    batch_size: int,
    seed: int,
    num_epochs: int | None = None,
    transform: Callable | None = None,
) -> grain.IterDataset:
    """Batches of this process's shard of `split`.

    train=True: shuffled, augmented, repeated (num_epochs None: forever), full batches only, with
    `config.data.extra_datasets` mixed in by size; with `config.data.device_augment` the batches are
    the decoded, unaugmented examples (`transform.host_fields`) that the train step augments.
    train=False: one ordered, unaugmented pass (augmented only where the config asks, e.g. DAD-3DNet's
    `val_jitter`); the last batch may be smaller.
    """
    data = config.data
    root = data.data_dir or default_data_dir()
    transform = transform or make_transform(config)
    names = [(data.dataset, data.builder_config or None)]
    if train:
        names += [(n, None) for n in (data.get("extra_datasets", ()) or ())]
    parts = []
    for name, builder_config in names:
        ds = grain.MapDataset.source(source(name, builder_config, split, root))
        ds = ds[jax.process_index() :: jax.process_count()]
        if train and data.get("device_augment", False):
            ds = ds.seed(seed).shuffle().repeat(num_epochs).map(_Host(transform.host_fields))
        elif train:
            ds = ds.seed(seed).shuffle().repeat(num_epochs).random_map(_Augment(transform))
        elif data.get("val_jitter", False):
            ds = ds.seed(seed).random_map(_Augment(transform))
        else:
            ds = ds.map(_Plain(transform))
        parts.append(ds)
    if len(parts) > 1:
        sizes = [len(source(n, c, split, root)) for n, c in names]
        ds = grain.MapDataset.mix(parts, weights=[s / sum(sizes) for s in sizes])
    else:
        ds = parts[0]
    ds = ds.batch(batch_size, drop_remainder=train)
    it = ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=4))
    if data.num_workers > 0:
        if not flags.FLAGS.is_parsed():  # grain's workers read absl flags; a library caller has none
            flags.FLAGS.mark_as_parsed()
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=data.num_workers))
    return it
