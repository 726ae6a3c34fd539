"""ResNet-50 v1 in the pytorchcv layout (the encoder of DAD-3DNet), NHWC.

pytorchcv's `resnet50` is ResNet v1 with `conv1_stride=True`: in the first unit of a
downsampling stage the stride sits on the first 1x1 convolution (and on the projection
shortcut `identity_conv`), not on the 3x3 as in torchvision's v1.5. Same shapes, different
function, so torchvision weights do not fit. Every padding is explicit and symmetric, as
in PyTorch: `SAME` would pad (2, 3) / (0, 1) for stride-2 convs on even sizes.

In training, flax updates BatchNorm's running variance with the biased batch variance where
torch uses the unbiased one; evaluation (running statistics) is identical.

Module names follow pytorchcv (`init_block.conv`, `stageS[U-1].body.conv1`, `identity_conv`)
so that `jaxhead.interop.dad3dnet` maps them one to one onto the official state dict.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import linen, nnx

from jaxhead.models.batch_norm import batch_norm

# pytorchcv initialises convolutions with kaiming_uniform_ (ReLU gain): U(+-sqrt(6 / fan_in)).
CONV_INIT = nnx.initializers.variance_scaling(2.0, "fan_in", "uniform")


class ConvBlock(nnx.Module):
    """pytorchcv `ConvBlock`: bias-free conv -> BatchNorm -> optional ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: int = 0,
        activate: bool = True,
        rngs: nnx.Rngs,
    ):
        self.conv = nnx.Conv(
            in_channels,
            out_channels,
            (kernel_size, kernel_size),
            strides=stride,
            padding=((padding, padding), (padding, padding)),
            use_bias=False,
            kernel_init=CONV_INIT,
            rngs=rngs,
        )
        self.bn = batch_norm(out_channels, rngs=rngs)
        self.activate = activate

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.bn(self.conv(x))
        return jax.nn.relu(x) if self.activate else x


class InitBlock(nnx.Module):
    """7x7/2 conv block and 3x3/2 max-pool: (B, H, W, 3) -> (B, H/4, W/4, C)."""

    def __init__(self, in_channels: int, out_channels: int, *, rngs: nnx.Rngs):
        self.conv = ConvBlock(in_channels, out_channels, 7, stride=2, padding=3, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        # Max-pool padding is -inf (the pool's identity), as torch's MaxPool2d(3, 2, 1).
        return linen.max_pool(self.conv(x), (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))


class Bottleneck(nnx.Module):
    """pytorchcv `ResBottleneck` with conv1_stride: 1x1 (stride) -> 3x3 -> 1x1, width out / 4."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, *, rngs: nnx.Rngs):
        mid = out_channels // 4
        self.conv1 = ConvBlock(in_channels, mid, 1, stride=stride, rngs=rngs)
        self.conv2 = ConvBlock(mid, mid, 3, padding=1, rngs=rngs)
        self.conv3 = ConvBlock(mid, out_channels, 1, activate=False, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.conv3(self.conv2(self.conv1(x)))


class ResUnit(nnx.Module):
    """Bottleneck plus identity or projection shortcut (`identity_conv`), then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, *, rngs: nnx.Rngs):
        self.body = Bottleneck(in_channels, out_channels, stride, rngs=rngs)
        if in_channels != out_channels or stride != 1:
            self.identity_conv = ConvBlock(
                in_channels, out_channels, 1, stride=stride, activate=False, rngs=rngs
            )
        else:
            self.identity_conv = None

    def __call__(self, x: jax.Array) -> jax.Array:
        identity = x if self.identity_conv is None else self.identity_conv(x)
        return jax.nn.relu(self.body(x) + identity)


def resnet50_channels(width_multiplier: float = 1.0) -> tuple[int, tuple[int, int, int, int]]:
    """(init_block channels, output channels of stages 1-4); (64, (256, 512, 1024, 2048)) at width 1."""
    w = width_multiplier
    return int(64 * w), tuple(int(c * w) for c in (256, 512, 1024, 2048))


class PytorchcvResNet(nnx.Module):
    """pytorchcv `resnet50().features` without its (unused) final pool.

    Stages are called one by one by the owner: DAD-3DNet fuses features between stage 3
    and stage 4. `stage_depths` and `width_multiplier` give smaller variants; the defaults
    are ResNet-50.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        stage_depths: Sequence[int] = (3, 4, 6, 3),
        width_multiplier: float = 1.0,
        rngs: nnx.Rngs,
    ):
        init_channels, stage_channels = resnet50_channels(width_multiplier)
        self.channels = stage_channels
        self.init_block = InitBlock(in_channels, init_channels, rngs=rngs)
        stages = []
        c_in = init_channels
        for s, (depth, c_out) in enumerate(zip(stage_depths, stage_channels, strict=True)):
            units = []
            for u in range(depth):
                stride = 2 if (u == 0 and s > 0) else 1
                units.append(ResUnit(c_in, c_out, stride, rngs=rngs))
                c_in = c_out
            stages.append(nnx.List(units))
        self.stage1, self.stage2, self.stage3, self.stage4 = stages

    @staticmethod
    def _run(stage: nnx.List, x: jax.Array) -> jax.Array:
        for unit in stage:
            x = unit(x)
        return x

    def stages_1_to_3(self, x: jax.Array) -> list[jax.Array]:
        """(B, H, W, 3) -> [stage1 (H/4), stage2 (H/8), stage3 (H/16)] NHWC maps."""
        x = self.init_block(x)
        outputs = []
        for stage in (self.stage1, self.stage2, self.stage3):
            x = self._run(stage, x)
            outputs.append(x)
        return outputs

    def stage4_forward(self, x: jax.Array) -> jax.Array:
        """(B, H/16, W/16, C3) -> (B, H/32, W/32, C4)."""
        return self._run(self.stage4, x)
