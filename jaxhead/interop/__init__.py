"""PyTorch interop: per-model converters between JAX models and official state dicts.

`converter(name)` (name = `config.model.name`) gives the model's `Converter`:
  to_state_dict(model) -> dict[str, np.ndarray]      the official state dict, in order
  from_state_dict(sd, model_or_cfg, **kw) -> model   the inverse; clear errors on mismatch
Converters are imported lazily so that using one model does not import the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, NamedTuple


class Converter(NamedTuple):
    to_state_dict: Callable[..., dict[str, Any]]
    from_state_dict: Callable[..., Any]


# model name -> (module, to_state_dict function, from_state_dict function)
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "trg": ("jaxhead.interop.trg", "trg_to_state_dict", "trg_from_state_dict"),
    "dad3dnet": ("jaxhead.interop.dad3dnet", "dad3dnet_to_state_dict", "dad3dnet_from_state_dict"),
}


def converter(name: str) -> Converter:
    """The converter of model `name`; a clear error for models without one."""
    if name not in _REGISTRY:
        raise ValueError(f"no PyTorch converter for model {name!r}; known: {sorted(_REGISTRY)}")
    module_name, to_name, from_name = _REGISTRY[name]
    module = importlib.import_module(module_name)
    return Converter(getattr(module, to_name), getattr(module, from_name))


def model_names() -> list[str]:
    return sorted(_REGISTRY)
