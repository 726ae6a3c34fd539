"""Resizes of NHWC feature maps with PyTorch's `F.interpolate` semantics, written out explicitly.

`jax.image.resize` has neither `align_corners=True` bilinear sampling nor torch's nearest
index rule, so both are built here from gathers (static indices) and repeats.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _nearest_indices(size_in: int, size_out: int) -> np.ndarray:
    """Torch's "nearest" source index floor(i * in / out), in exact integer arithmetic."""
    return (np.arange(size_out) * size_in) // size_out


def resize_nearest(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """`F.interpolate(x, size, mode="nearest")` for NHWC maps, (B, H, W, C) -> (B, h, w, C).

    An exact 2x enlargement repeats every row and column; an exact 2x reduction keeps the
    even rows and columns. Other ratios gather rows/columns floor(i * in / out).
    """
    h_in, w_in = x.shape[1], x.shape[2]
    h, w = size
    if (h, w) == (h_in, w_in):
        return x
    if (h, w) == (2 * h_in, 2 * w_in):
        return upsample_nearest_2x(x)
    if (2 * h, 2 * w) == (h_in, w_in):
        return downsample_nearest_2x(x)
    x = jnp.take(x, _nearest_indices(h_in, h), axis=1)
    return jnp.take(x, _nearest_indices(w_in, w), axis=2)


def upsample_nearest_2x(x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, 2H, 2W, C), each pixel repeated into a 2x2 block."""
    B, H, W, C = x.shape
    x = jnp.broadcast_to(x[:, :, None, :, None, :], (B, H, 2, W, 2, C))
    return x.reshape(B, 2 * H, 2 * W, C)


def downsample_nearest_2x(x: jax.Array) -> jax.Array:
    """(B, 2H, 2W, C) -> (B, H, W, C): the even rows and columns."""
    return x[:, ::2, ::2, :]


def _linear_taps(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source taps (i0, i1) and weight of i1 for align_corners=True: position i * (in - 1) / (out - 1)."""
    if size_out == 1:
        pos = np.zeros(1, np.float32)
    else:
        # float32 scale times index, as torch computes it for float32 inputs.
        pos = np.float32((size_in - 1) / (size_out - 1)) * np.arange(size_out, dtype=np.float32)
    i0 = np.minimum(np.floor(pos).astype(np.int64), size_in - 1)
    i1 = np.minimum(i0 + 1, size_in - 1)
    return i0, i1, (pos - i0).astype(np.float32)


def resize_bilinear_align_corners(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """`F.interpolate(x, size, mode="bilinear", align_corners=True)` for NHWC maps.

    Output pixel (i, j) samples the input at (i (H-1)/(h-1), j (W-1)/(w-1)): the corner
    pixels of input and output coincide. Separable: rows first, then columns.

    Args:
      x: (B, H, W, C).
      size: (h, w) output size.

    Returns:
      (B, h, w, C) in x's dtype.
    """
    r0, r1, wr = _linear_taps(x.shape[1], size[0])
    c0, c1, wc = _linear_taps(x.shape[2], size[1])
    wr = jnp.asarray(wr, x.dtype)[None, :, None, None]
    wc = jnp.asarray(wc, x.dtype)[None, None, :, None]
    rows = jnp.take(x, r0, axis=1) * (1 - wr) + jnp.take(x, r1, axis=1) * wr
    return jnp.take(rows, c0, axis=2) * (1 - wc) + jnp.take(rows, c1, axis=2) * wc
