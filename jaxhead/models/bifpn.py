"""The BiFPN of DAD-3DNet (official `model_training/model/bifpn.py` semantics), NHWC.

Five levels p3..p7: p3, p4, p5 are 1x1 lateral convolutions of three backbone maps; p6 is
a 3x3/2 convolution of the deepest of them and p7 a 3x3/2 conv + BN + ReLU of p6. Each
block runs a top-down then a bottom-up pass of weighted sums, each followed by a
"depthwise-separable" unit (depthwise 1x1, pointwise 1x1, BN, ReLU).

Faithful details that differ from the EfficientDet paper:
  * fusion weights are relu(w) / column_sum(relu(w)) + 1e-4: the epsilon is added after
    the division, so the weights of a node sum to 1 + k * 1e-4;
  * BN eps 4e-5 and torch momentum 0.9997 (flax momentum 0.0003: the running statistics
    are essentially the last batch's);
  * resizes are torch's default nearest `interpolate` (2x repetition up, even rows and
    columns down).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxhead.models.batch_norm import batch_norm
from jaxhead.models.torch_init import TORCH_DEFAULT_INIT, torch_bias_init
from jaxhead.ops.resize import resize_nearest

BN_EPSILON = 4e-5
# torch momentum 0.9997 -> flax momentum 1 - 0.9997.
BN_MOMENTUM = 0.0003
FUSION_EPSILON = 1e-4

TOP_DOWN = ("p6_td", "p5_td", "p4_td", "p3_td")
BOTTOM_UP = ("p4_out", "p5_out", "p6_out", "p7_out")


def _conv(
    c_in: int, c_out: int, k: int, *, stride: int = 1, groups: int = 1, bias: bool = True, rngs: nnx.Rngs
):
    p = k // 2
    return nnx.Conv(
        c_in,
        c_out,
        (k, k),
        strides=stride,
        padding=((p, p), (p, p)),
        feature_group_count=groups,
        use_bias=bias,
        kernel_init=TORCH_DEFAULT_INIT,
        bias_init=torch_bias_init(c_in // groups * k * k),
        rngs=rngs,
    )


def fusion_weights(w: jax.Array) -> jax.Array:
    """(n_inputs, n_nodes) raw weights -> relu(w) / column sums + 1e-4 (epsilon after the division)."""
    w = jax.nn.relu(w)
    return w / jnp.sum(w, axis=0) + FUSION_EPSILON


class SeparableUnit(nnx.Module):
    """Official `BiFPNDepthwiseConvBlock`: depthwise 1x1 -> pointwise 1x1 (both bias-free) -> BN -> ReLU."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.depthwise = _conv(channels, channels, 1, groups=channels, bias=False, rngs=rngs)
        self.pointwise = _conv(channels, channels, 1, bias=False, rngs=rngs)
        self.bn = batch_norm(channels, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.relu(self.bn(self.pointwise(self.depthwise(x))))


class ConvBNReLU(nnx.Module):
    """Official `BiFPNConvBlock` used for p7: 3x3/2 conv with bias -> BN -> ReLU."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.conv = _conv(channels, channels, 3, stride=2, rngs=rngs)
        self.bn = batch_norm(channels, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.relu(self.bn(self.conv(x)))


class BiFPNBlock(nnx.Module):
    """One top-down + bottom-up pass over [p3, p4, p5, p6, p7]."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        # Columns serve the nodes in pass order; rows are the node's inputs.
        self.w1 = nnx.Param(jnp.ones((2, 4), jnp.float32))
        self.w2 = nnx.Param(jnp.ones((3, 4), jnp.float32))
        for name in TOP_DOWN + BOTTOM_UP:
            setattr(self, name, SeparableUnit(channels, rngs=rngs))

    def __call__(self, feats: Sequence[jax.Array]) -> list[jax.Array]:
        """[p3, p4, p5, p6, p7] (each (B, H_k, W_k, C), halving in size) -> same shapes."""
        p3, p4, p5, p6, p7 = feats
        w1 = fusion_weights(self.w1[...])
        w2 = fusion_weights(self.w2[...])

        def to(x: jax.Array, ref: jax.Array) -> jax.Array:
            return resize_nearest(x, ref.shape[1:3])

        p6_td = self.p6_td(w1[0, 0] * p6 + w1[1, 0] * to(p7, p6))
        p5_td = self.p5_td(w1[0, 1] * p5 + w1[1, 1] * to(p6_td, p5))
        p4_td = self.p4_td(w1[0, 2] * p4 + w1[1, 2] * to(p5_td, p4))
        p3_out = self.p3_td(w1[0, 3] * p3 + w1[1, 3] * to(p4_td, p3))

        p4_out = self.p4_out(w2[0, 0] * p4 + w2[1, 0] * p4_td + w2[2, 0] * to(p3_out, p4))
        p5_out = self.p5_out(w2[0, 1] * p5 + w2[1, 1] * p5_td + w2[2, 1] * to(p4_out, p5))
        p6_out = self.p6_out(w2[0, 2] * p6 + w2[1, 2] * p6_td + w2[2, 2] * to(p5_out, p6))
        # p7's top-down node is p7 itself.
        p7_out = self.p7_out(w2[0, 3] * p7 + w2[1, 3] * p7 + w2[2, 3] * to(p6_out, p7))
        return [p3_out, p4_out, p5_out, p6_out, p7_out]


class BiFPN(nnx.Module):
    """Lateral convs, p6/p7, then `num_layers` BiFPN blocks.

    Args:
      in_channels: channels of the three backbone maps (c2, c3, c4), strides 4, 8, 16.
      channels: feature width (official 256).
      num_layers: number of blocks (official 2).
    """

    def __init__(
        self, in_channels: Sequence[int], channels: int = 256, num_layers: int = 2, *, rngs: nnx.Rngs
    ):
        c2, c3, c4 = in_channels
        self.p3 = _conv(c2, channels, 1, rngs=rngs)
        self.p4 = _conv(c3, channels, 1, rngs=rngs)
        self.p5 = _conv(c4, channels, 1, rngs=rngs)
        self.p6 = _conv(c4, channels, 3, stride=2, rngs=rngs)
        self.p7 = ConvBNReLU(channels, rngs=rngs)
        self.bifpn = nnx.List([BiFPNBlock(channels, rngs=rngs) for _ in range(num_layers)])

    def __call__(self, feats: Sequence[jax.Array]) -> list[jax.Array]:
        """[c2, c3, c4] NHWC -> [p3_out, p4_out, p5_out, p6_out, p7_out] of the last block."""
        c2, c3, c4 = feats
        p6 = self.p6(c4)
        levels = [self.p3(c2), self.p4(c3), self.p5(c4), p6, self.p7(p6)]
        for block in self.bifpn:
            levels = block(levels)
        return levels
