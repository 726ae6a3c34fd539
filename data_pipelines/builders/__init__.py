"""The dataset builders by name. Importing a builder's module registers it with TFDS."""

from __future__ import annotations

import importlib

import tensorflow_datasets as tfds

BUILDERS: dict[str, str] = {
    "synthetic_heads": "data_pipelines.builders.synthetic_heads",
    "arkitface": "data_pipelines.builders.arkitface",
    "w300lp": "data_pipelines.builders.w300lp",
    "biwi": "data_pipelines.builders.biwi",
    "dad3dheads": "data_pipelines.builders.dad3dheads",
    "aflw2000_3d": "data_pipelines.builders.aflw2000_3d",
}


def builder_class(name: str) -> type[tfds.core.GeneratorBasedBuilder]:
    if name not in BUILDERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(BUILDERS)}")
    importlib.import_module(BUILDERS[name])  # registers the builder with TFDS
    return tfds.builder_cls(name)
