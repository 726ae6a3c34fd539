"""Model registry: `build_model(config)` builds the network named by `config.model.name`."""

from __future__ import annotations

from typing import Any

import ml_collections
from flax import nnx

MODEL_NAMES = ("trg", "dad3dnet")


def build_model(config: ml_collections.ConfigDict, *, rngs: nnx.Rngs, **buffers: Any) -> nnx.Module:
    """Builds the model of `config.model`.

    `buffers` are model-specific initial state (for TRG: `init_face`, `init_pose`,
    `subsample`); when omitted, placeholders of the configured shapes are used, which
    is what restoring a checkpoint needs.
    """
    name = config.model.name
    if name == "trg":
        from jaxhead.models.trg import TRG

        return TRG(config.model, rngs=rngs, **buffers)
    if name == "dad3dnet":
        from jaxhead.models.dad3dnet import DAD3DNet

        return DAD3DNet(config.model, rngs=rngs, **buffers)
    raise ValueError(f"config.model.name must be one of {MODEL_NAMES}, got {name!r}")
