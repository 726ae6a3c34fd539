"""Command-line config overrides that name a missing key fail in one line with the key's path.

ml_collections raises an AttributeError deep inside flag parsing for `--config.a.b=1` when `b`
does not exist; `parse_flags` turns that into a usage error naming the full path and the
closest existing key.
"""

from __future__ import annotations

import difflib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import ml_collections
from absl import flags


def _load(config_arg: str) -> ml_collections.ConfigDict | None:
    path, _, arg = config_arg.partition(":")
    spec = importlib.util.spec_from_file_location("config_for_overrides", Path(path))
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg or None)


def missing_key(config: Any, path: str) -> str | None:
    """A one-line message if `path` ("a.b.c") does not name a key of `config`, else None."""
    node, parts = config, path.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, (ml_collections.ConfigDict, dict)) or part not in node:
            where = ".".join(parts[:depth]) or "the config"
            keys = sorted(node.keys()) if isinstance(node, (ml_collections.ConfigDict, dict)) else []
            close = difflib.get_close_matches(part, keys, n=1)
            hint = f"; did you mean --config.{'.'.join(parts[:depth] + close)}?" if close else ""
            return f"--config.{path}: {where} has no key {part!r}{hint} (it has: {', '.join(keys)})"
        node = node[part]
    return None


def parse_flags(argv: list[str]) -> list[str]:
    """`flags.FLAGS(argv)`, exiting with one line for an override of a key that does not exist."""
    try:
        return flags.FLAGS(argv)
    except (AttributeError, KeyError):
        config_arg = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
        config = _load(config_arg) if config_arg else None
        for arg in argv[1:]:
            if config is not None and arg.startswith("--config."):
                message = missing_key(config, arg[len("--config."):].split("=", 1)[0])
                if message:
                    sys.exit(f"error: {message}")
        raise
