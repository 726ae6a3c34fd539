"""Name -> class registries with import by name (as big_vision's): `jaxhead.models` and `jaxhead.tasks`."""

from __future__ import annotations

import importlib
from typing import Callable


class Registry:
    """Classes registered under a name; `get(name)` first imports `<package>.<name>`, where a
    built-in registers itself, then looks the name up."""

    def __init__(self, package: str, what: str):
        self.package, self.what = package, what
        self._classes: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator registering the class as `name`."""

        def add(cls: type) -> type:
            self._classes[name] = cls
            return cls

        return add

    def get(self, name: str) -> type:
        if name not in self._classes:
            try:
                importlib.import_module(f"{self.package}.{name}")
            except ModuleNotFoundError as e:
                if e.name != f"{self.package}.{name}":
                    raise
        if name not in self._classes:
            raise ValueError(f"config.model.name={name!r} names no registered {self.what}; registered: {sorted(self._classes)}")
        return self._classes[name]
