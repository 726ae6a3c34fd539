"""ResNet-18 in the torchvision layout (TRG's trunk), NHWC, without pooling or classifier.

torchvision's v1.5 BasicBlock: 3x3 (stride) -> BN -> ReLU -> 3x3 -> BN, plus the identity
or a [1x1 stride conv, BN] projection, then ReLU. Every padding is explicit and
symmetric as in PyTorch (Flax's `SAME` pads (2, 3) / (0, 1) for stride-2 convs on even
sizes), and the stem's max-pool pads with -inf. BatchNorm: eps 1e-5, torch momentum 0.1.

Module names follow torchvision (`conv1`, `bn1`, `layerL[i].conv1`, `.downsample_conv`,
`.downsample_bn`) so that `jaxhead.interop.trg` maps them one to one onto the official
state dict. Initialisation is PyTorch's default (kaiming_uniform with a = sqrt(5), i.e.
U(+-1/sqrt(fan_in))); TRG starts from ImageNet weights, which can be loaded with
`jaxhead.interop.trg.load_torchvision_resnet18`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import linen, nnx

from jaxhead.models.batch_norm import batch_norm
from jaxhead.models.torch_init import TORCH_DEFAULT_INIT


def conv(in_ch: int, out_ch: int, kernel: int, stride: int, padding: int, *, rngs: nnx.Rngs) -> nnx.Conv:
    """Bias-free conv with explicit symmetric padding and PyTorch's default init."""
    return nnx.Conv(
        in_ch,
        out_ch,
        (kernel, kernel),
        strides=stride,
        padding=((padding, padding), (padding, padding)),
        use_bias=False,
        kernel_init=TORCH_DEFAULT_INIT,
        rngs=rngs,
    )


class BasicBlock(nnx.Module):
    """(B, H, W, in) -> (B, H/stride, W/stride, out)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, *, rngs: nnx.Rngs):
        self.conv1 = conv(in_ch, out_ch, 3, stride, 1, rngs=rngs)
        self.bn1 = batch_norm(out_ch, rngs=rngs)
        self.conv2 = conv(out_ch, out_ch, 3, 1, 1, rngs=rngs)
        self.bn2 = batch_norm(out_ch, rngs=rngs)
        if stride != 1 or in_ch != out_ch:
            self.downsample_conv = conv(in_ch, out_ch, 1, stride, 0, rngs=rngs)
            self.downsample_bn = batch_norm(out_ch, rngs=rngs)
        else:
            self.downsample_conv = None
            self.downsample_bn = None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.downsample_conv is not None:
            x = self.downsample_bn(self.downsample_conv(x))
        return jax.nn.relu(y + x)


class ResNet18(nnx.Module):
    """Stem + layer1..4: (B, H, W, 3) -> (B, H/32, W/32, widths[3]); 192 px -> 6x6x512."""

    def __init__(self, widths: Sequence[int] = (64, 128, 256, 512), *, rngs: nnx.Rngs):
        self.widths = tuple(int(w) for w in widths)
        self.conv1 = conv(3, self.widths[0], 7, 2, 3, rngs=rngs)
        self.bn1 = batch_norm(self.widths[0], rngs=rngs)
        in_ch = self.widths[0]
        layers = []
        for i, width in enumerate(self.widths):
            stride = 1 if i == 0 else 2
            layers.append(
                nnx.List(
                    [BasicBlock(in_ch, width, stride, rngs=rngs), BasicBlock(width, width, 1, rngs=rngs)]
                )
            )
            in_ch = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jax.nn.relu(self.bn1(self.conv1(x)))
        x = linen.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in layer:
                x = block(x)
        return x
