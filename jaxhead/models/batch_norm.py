"""BatchNorm for the ported networks: PyTorch's defaults, and activations kept in the input's dtype.

PyTorch's `BatchNorm2d(eps=1e-5, momentum=0.1)` is Flax's `momentum=0.9` (Flax weighs the
running value) with the two-pass variance.

bf16 training runs the forward pass on bf16 copies of the parameters, but the running
statistics are not parameters and stay f32. Flax's default promotion would lift the
activation to f32 at the first BatchNorm, so every later layer would compute in f32 (and a
custom conv would see mixed dtypes). `to_input_dtype` casts the layer's variables to the
input's dtype instead; batch statistics are still computed and accumulated in f32 by Flax.
With f32 inputs this is Flax's default behaviour exactly.
"""

from __future__ import annotations

from typing import TypeVar

import jax
from flax import nnx

T = TypeVar("T", bound=tuple)


def to_input_dtype(args: T, /, *, dtype: jax.typing.DTypeLike | None = None, inexact: bool = True) -> T:
    """Casts every array in `args` to `dtype`, or to the dtype of `args[0]` when None.

    Flax's `PromoteDtypeFn` signature; `None` entries pass through.
    """
    del inexact
    target = dtype if dtype is not None else args[0].dtype
    return tuple(None if a is None else a.astype(target) for a in args)  # type: ignore[return-value]


def batch_norm(
    channels: int, *, rngs: nnx.Rngs, momentum: float = 0.9, epsilon: float = 1e-5
) -> nnx.BatchNorm:
    """NHWC BatchNorm over `channels`; `momentum` in Flax's sense (torch 0.1 -> 0.9)."""
    return nnx.BatchNorm(
        channels, momentum=momentum, epsilon=epsilon, use_fast_variance=False,
        promote_dtype=to_input_dtype, rngs=rngs,
    )
