"""Bilinear point sampling of NHWC feature maps, as `F.grid_sample(align_corners=True)`.

Only what TRG needs: bilinear interpolation, `align_corners=True`, zero padding, and a
list of points per image instead of an output grid. Gradients flow to the feature map
and to the sampling points (through the bilinear weights), which TRG relies on.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def grid_sample_points(feat: jax.Array, points: jax.Array) -> jax.Array:
    """Samples `feat` at normalised points.

    A point (x, y) in [-1, 1]^2 maps to the pixel centre grid with align_corners=True:
    ix = (x + 1) / 2 (W - 1), iy = (y + 1) / 2 (H - 1); x = -1 is the centre of the
    first column, x = 1 the centre of the last. Each of the 4 integer neighbours that
    lies outside [0, W-1] x [0, H-1] contributes zero (zero padding).

    Args:
      feat: (B, H, W, C) feature map.
      points: (B, N, 2) normalised (x, y) coordinates, x along the width.

    Returns:
      (B, N, C) sampled features.
    """
    B, H, W, C = feat.shape
    ix = (points[..., 0] + 1.0) / 2.0 * (W - 1)
    iy = (points[..., 1] + 1.0) / 2.0 * (H - 1)
    x0 = jnp.floor(ix)
    y0 = jnp.floor(iy)
    wx1 = ix - x0
    wy1 = iy - y0
    wx0 = 1.0 - wx1
    wy0 = 1.0 - wy1
    x0i = x0.astype(jnp.int32)
    y0i = y0.astype(jnp.int32)
    flat = feat.reshape(B, H * W, C)

    def corner(xi: jax.Array, yi: jax.Array, w: jax.Array) -> jax.Array:
        inside = (xi >= 0) & (xi <= W - 1) & (yi >= 0) & (yi <= H - 1)
        idx = jnp.clip(yi, 0, H - 1) * W + jnp.clip(xi, 0, W - 1)
        vals = jnp.take_along_axis(flat, idx[..., None], axis=1)
        return vals * jnp.where(inside, w, 0.0)[..., None]

    return (
        corner(x0i, y0i, wx0 * wy0)
        + corner(x0i + 1, y0i, wx1 * wy0)
        + corner(x0i, y0i + 1, wx0 * wy1)
        + corner(x0i + 1, y0i + 1, wx1 * wy1)
    )
