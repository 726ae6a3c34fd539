"""Model registry: `build_model(config)` builds the network registered as `config.model.name`.

Built-in networks live in `jaxhead.models.<name>` (imported by name on first use) and register
themselves with `@register_model(name)`; a new model only needs its module and that line.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import ml_collections
from flax import nnx

_MODELS: dict[str, type] = {}


def register_model(name: str) -> Callable[[type], type]:
    """Class decorator: the class is built as `cls(config.model, rngs=..., **buffers)`."""

    def add(cls: type) -> type:
        _MODELS[name] = cls
        return cls

    return add


def model_class(name: str) -> type:
    if name not in _MODELS:
        try:
            importlib.import_module(f"jaxhead.models.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"jaxhead.models.{name}":
                raise
    if name not in _MODELS:
        raise ValueError(f"config.model.name must name a registered model {sorted(_MODELS)}, got {name!r}")
    return _MODELS[name]


def build_model(config: ml_collections.ConfigDict, *, rngs: nnx.Rngs, **buffers: Any) -> nnx.Module:
    """Builds the model of `config.model`.

    `buffers` are model-specific initial state (for TRG: `init_face`, `init_pose`,
    `subsample`); when omitted, placeholders of the configured shapes are used, which
    is what restoring a checkpoint needs.
    """
    return model_class(config.model.name)(config.model, rngs=rngs, **buffers)
