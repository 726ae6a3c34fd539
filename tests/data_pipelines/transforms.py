"""The models' per-example transforms built from a config with data_pipelines and flame_jax alone
(the tasks build the same ones in jaxhead; these tests stay below that layer)."""

from __future__ import annotations

import ml_collections

from data_pipelines.pipelines.dad3dnet import DAD3DNetTransform
from data_pipelines.pipelines.trg import TRGTransform
from data_pipelines.topology import load_topology
from flame_jax.dad_ground_truth import LandmarkEmbedding
from flame_jax.synthetic import head_model


def trg_transform(config: ml_collections.ConfigDict) -> TRGTransform:
    return TRGTransform(config.data, load_topology(config.data))


def dad_transform(config: ml_collections.ConfigDict) -> DAD3DNetTransform:
    flame = head_model(config.flame.synthetic_seed, config.model.n_shape, config.model.n_expr)
    return DAD3DNetTransform(config.data, LandmarkEmbedding.from_flame(flame))


def transform_for(config: ml_collections.ConfigDict):
    return trg_transform(config) if config.model.name == "trg" else dad_transform(config)
