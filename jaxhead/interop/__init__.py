"""PyTorch interop: per-model converters between JAX models and official state dicts.

Model `name` (= `config.model.name`) has its converter in `jaxhead.interop.<name>`, imported by
name, with these module-level entries:
  to_state_dict(model) -> dict[str, np.ndarray]       the official state dict, in order
  from_state_dict(sd, model_or_cfg, **kw) -> model    the inverse; clear errors on mismatch
  import_official(path, config, *, trg_assets) -> model   reads an official checkpoint file
  OFFICIAL_CONFIG = ("configs.<name>", variant)        the config `jaxhead.import_torch` defaults to
A new model's interop is that module alone; using one model imports no other.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, NamedTuple

_ENTRIES = ("to_state_dict", "from_state_dict", "import_official", "OFFICIAL_CONFIG")


class Converter(NamedTuple):
    to_state_dict: Callable[..., dict[str, Any]]
    from_state_dict: Callable[..., Any]
    import_official: Callable[..., Any]
    official_config: tuple[str, str | None]


def converter(name: str) -> Converter:
    """The converter of model `name`; a clear error for models without one."""
    try:
        module = importlib.import_module(f"jaxhead.interop.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"jaxhead.interop.{name}":
            raise
        raise ValueError(f"no PyTorch converter for model {name!r} (no module jaxhead.interop.{name})") from None
    missing = [entry for entry in _ENTRIES if not hasattr(module, entry)]
    if missing:
        raise ValueError(f"jaxhead.interop.{name} is not a converter: it lacks {missing}")
    return Converter(*(getattr(module, entry) for entry in _ENTRIES))
