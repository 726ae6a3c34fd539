"""Dtype promotion that keeps activations in the input's dtype (bf16 training).

The train step runs the forward pass on bf16 copies of the parameters, but BatchNorm's
running statistics are not parameters and stay f32. Flax's default promotion would lift
the whole activation to f32 at the first BatchNorm, so every later layer would compute in
f32 (and a custom conv would see mixed dtypes). BatchNorm layers built with
`promote_dtype=to_input_dtype` cast their variables to the input's dtype instead; batch
statistics are still computed and accumulated in f32 by Flax. With f32 inputs this is
Flax's default behaviour exactly.
"""

from __future__ import annotations

from typing import TypeVar

import jax

T = TypeVar("T", bound=tuple)


def to_input_dtype(args: T, /, *, dtype: jax.typing.DTypeLike | None = None, inexact: bool = True) -> T:
    """Casts every array in `args` to `dtype`, or to the dtype of `args[0]` when None.

    Flax's `PromoteDtypeFn` signature; `None` entries pass through.
    """
    del inexact
    target = dtype if dtype is not None else args[0].dtype
    return tuple(None if a is None else a.astype(target) for a in args)  # type: ignore[return-value]
