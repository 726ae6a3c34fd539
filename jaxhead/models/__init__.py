"""Model registry: `build_model(config)` builds the network registered as `config.model.name`.

Built-in networks live in `jaxhead.models.<name>` (imported by name on first use) and register
themselves with `@register_model(name)`; a new model only needs its module and that line.
"""

from __future__ import annotations

from typing import Any

import ml_collections
from flax import nnx

from jaxhead.registry import Registry

_MODELS = Registry("jaxhead.models", "model")
# Class decorator: `@register_model("trg")`; the class is built as `cls(config.model, rngs=..., **buffers)`.
register_model = _MODELS.register


def build_model(config: ml_collections.ConfigDict, *, rngs: nnx.Rngs, **buffers: Any) -> nnx.Module:
    """Builds the model of `config.model`.

    `buffers` are model-specific initial state (for TRG: `init_face`, `init_pose`,
    `subsample`); when omitted, placeholders of the configured shapes are used, which
    is what restoring a checkpoint needs.
    """
    return _MODELS.get(config.model.name)(config.model, rngs=rngs, **buffers)
