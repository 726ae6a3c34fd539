"""Differentiable 2D soft-argmax of NHWC heatmaps."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def soft_argmax_2d(logits: jax.Array) -> jax.Array:
    """Expected pixel position under a softmax over all positions of each channel.

    No temperature: the softmax runs over the H*W raw logits of a channel.

    Args:
      logits: (B, H, W, K) heatmap logits, one channel per keypoint.

    Returns:
      (B, K, 2) positions (x, y) in pixels of the map, x in [0, W-1], y in [0, H-1].
    """
    B, H, W, K = logits.shape
    prob = jax.nn.softmax(logits.reshape(B, H * W, K), axis=1).reshape(B, H, W, K)
    x = jnp.einsum("bhwk,w->bk", prob, jnp.arange(W, dtype=logits.dtype))
    y = jnp.einsum("bhwk,h->bk", prob, jnp.arange(H, dtype=logits.dtype))
    return jnp.stack([x, y], axis=-1)
