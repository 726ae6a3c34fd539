"""Non-trainable model state that checkpoints carry (PyTorch's registered buffers)."""

from __future__ import annotations

from flax import nnx


class Buffer(nnx.Variable):
    """Fixed model state such as an initial mesh, a sampling grid or vertex indices.

    It is not an `nnx.Param`, so optimizers (which take the `nnx.Param` leaves) never
    update it and no gradient is taken for it, but `nnx.state` and the orbax
    checkpoints include it.
    """
