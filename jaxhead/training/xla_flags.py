"""XLA backend options chosen by the config, which must be set before JAX starts its backend."""

from __future__ import annotations

import os

from jax._src import xla_bridge


def add_xla_flags(flags: str) -> None:
    """Appends `flags` (e.g. "--xla_cpu_use_onednn=true") to XLA_FLAGS for this process.

    Raises if the JAX backend is already running: XLA reads the variable once, when it starts.
    """
    flags = flags.strip()
    if not flags:
        return
    if any(not f.startswith("--xla_") for f in flags.split()):
        raise ValueError(
            f"config.train.xla_cpu_flags: expected '--xla_...' options separated by spaces, got {flags!r}"
        )
    if xla_bridge.backends_are_initialized():
        raise RuntimeError(f"XLA flags {flags!r} come too late: the JAX backend has already started")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()
