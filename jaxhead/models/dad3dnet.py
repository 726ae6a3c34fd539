"""DAD-3DNet (Martyniuk, Kupyn et al., CVPR 2022) in Flax NNX, NHWC.

Reproduces the forward pass of the official `FlameRegression`
(`model_training/model/flame_regression.py`; ../shared/specs/dad3dnet.md §3):

  image (B, 256, 256, 3)
    -> pytorchcv ResNet-50 v1 stages 1-3              (64², 32², 16²; 256/512/1024 ch)
    -> BiFPN (256 ch, 2 blocks) on stages 1-3         p3_out 64², p5_out 16²
    -> heatmap head: 3x3 conv on p3_out               logits (B, 64, 64, 68)
    -> fusion with stage 3                            (B, 16, 16, 1024)
    -> ResNet stage 4, global average pool            (B, 2048)
    -> three MLP heads 2048 -> 512 -> n (ReLU, dropout 0.3):
         shape 403 (tanh x 3: shape 300 | expression 100 | jaw 3),
         pose 10 (rotation 6D | translation 3 | scale 1),
         landmarks 136 -> (68, 2), ReLU, in units of the 256 crop.

Fusion (`fusion` in the config):
  "gated" (official): h = sigmoid(bilinear_align_corners(logits, 16²)); f = [stage3 | h | p5_out]
      (channel order matters for weight import) -> 1x1 conv to 1024 -> product with stage3.
  "inception" (paper variant): see `InceptionFusion`; the paper names an "Inception module"
      but gives no layer sizes, so the design there is ours.

BatchNorm and dropout follow NNX modes: `model.train()` (batch statistics, dropout on) and
`model.eval()` (running statistics, dropout off), as PyTorch's train()/eval().
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
from flax import linen, nnx

from jaxhead.models import register_model
from jaxhead.models.bifpn import BiFPN
from jaxhead.models.pytorchcv_resnet import ConvBlock, PytorchcvResNet
from jaxhead.models.torch_init import TORCH_DEFAULT_INIT, torch_bias_init
from jaxhead.ops.resize import resize_bilinear_align_corners

FUSION_TYPES = ("gated", "inception")
NUM_POSE_PARAMS = 10  # rotation 6D, translation 3, scale 1
NUM_JAW_PARAMS = 3


def model_config() -> ml_collections.ConfigDict:
    """The official DAD-3DNet configuration; the width knobs give CPU-sized variants."""
    return ml_collections.ConfigDict(
        dict(
            name="dad3dnet",
            img_size=256,
            num_filters=256,  # BiFPN width
            num_classes=68,  # landmarks / heatmap channels
            limit_value=3.0,  # shape head output = tanh(.) * limit_value
            bifpn_layers=2,
            fusion="gated",  # "gated" (official) or "inception" (paper)
            n_shape=300,
            n_expr=100,
            head_hidden=512,
            dropout=0.3,
            # Smaller variants (the official model: 1.0 and (3, 4, 6, 3)).
            width_multiplier=1.0,
            stage_depths=(3, 4, 6, 3),
        )
    )


def _linear(n_in: int, n_out: int, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(n_in, n_out, kernel_init=TORCH_DEFAULT_INIT, bias_init=torch_bias_init(n_in), rngs=rngs)


def _conv1x1(n_in: int, n_out: int, rngs: nnx.Rngs) -> nnx.Conv:
    return nnx.Conv(
        n_in, n_out, (1, 1), kernel_init=TORCH_DEFAULT_INIT, bias_init=torch_bias_init(n_in), rngs=rngs
    )


class MLPHead(nnx.Module):
    """Official `ClassificationHead` after pooling: Linear -> ReLU -> Dropout -> Linear."""

    def __init__(self, in_features: int, hidden: int, out_features: int, dropout: float, *, rngs: nnx.Rngs):
        self.fc1 = _linear(in_features, hidden, rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.fc2 = _linear(hidden, out_features, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """(B, in_features) -> (B, out_features)."""
        return self.fc2(self.dropout(jax.nn.relu(self.fc1(x))))


class GatedFusion(nnx.Module):
    """Official `FusionLayer`: 1x1 conv of [x | heatmaps | bifpn] to x's width, times x (no sigmoid)."""

    def __init__(self, in_channels: int, out_channels: int, *, rngs: nnx.Rngs):
        self.conv1x1 = _conv1x1(in_channels, out_channels, rngs)

    def __call__(self, x: jax.Array, fused_inputs: jax.Array) -> jax.Array:
        """x (B, h, w, C), fused_inputs (B, h, w, C_in) = [x | heatmaps | bifpn] -> (B, h, w, C)."""
        return self.conv1x1(fused_inputs) * x


class InceptionFusion(nnx.Module):
    """The paper's "Inception module" fusion (our design; the paper gives no sizes).

    Input: the same concatenation as the official fusion, [stage3 | sigmoid heatmaps | p5_out]
    (1348 channels at 16² for the official widths). Four parallel branches in the style of
    Inception-v3 (BN-Inception), each conv = bias-free conv + BN + ReLU, with C = the stage-3
    width (1024) and branch width C/4:
      a) 1x1 -> C/4;
      b) 1x1 -> C/8, 3x3 -> C/4;
      c) 1x1 -> C/8, 3x3 -> C/4, 3x3 -> C/4 (a 5x5 receptive field as two 3x3);
      d) 3x3/1 max-pool, 1x1 -> C/4.
    The branches are concatenated (C channels), projected by a 1x1 conv with bias to C, and
    multiplied by the stage-3 features: the same gating as the official model, so the two
    variants differ only in how the fusion map is computed. ~3.3M parameters at full width
    (the official 1x1 fusion has 1.4M).
    """

    def __init__(self, in_channels: int, out_channels: int, *, rngs: nnx.Rngs):
        b, r = out_channels // 4, out_channels // 8
        self.branch_1x1 = ConvBlock(in_channels, b, 1, rngs=rngs)
        self.branch_3x3 = nnx.List(
            [ConvBlock(in_channels, r, 1, rngs=rngs), ConvBlock(r, b, 3, padding=1, rngs=rngs)]
        )
        self.branch_5x5 = nnx.List(
            [
                ConvBlock(in_channels, r, 1, rngs=rngs),
                ConvBlock(r, b, 3, padding=1, rngs=rngs),
                ConvBlock(b, b, 3, padding=1, rngs=rngs),
            ]
        )
        self.branch_pool = ConvBlock(in_channels, b, 1, rngs=rngs)
        self.project = _conv1x1(4 * b, out_channels, rngs)

    def __call__(self, x: jax.Array, fused_inputs: jax.Array) -> jax.Array:
        """x (B, h, w, C), fused_inputs (B, h, w, C_in) -> (B, h, w, C)."""
        a = self.branch_1x1(fused_inputs)
        b = fused_inputs
        for layer in self.branch_3x3:
            b = layer(b)
        c = fused_inputs
        for layer in self.branch_5x5:
            c = layer(c)
        pooled = linen.max_pool(fused_inputs, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
        d = self.branch_pool(pooled)
        return self.project(jnp.concatenate([a, b, c, d], axis=-1)) * x


@register_model("dad3dnet")
class DAD3DNet(nnx.Module):
    """DAD-3DNet; `cfg` is `model_config()` (possibly with overrides)."""

    def __init__(self, cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
        if cfg.fusion not in FUSION_TYPES:
            raise ValueError(f"model.fusion must be one of {FUSION_TYPES}, got {cfg.fusion!r}")
        if cfg.img_size % 32:
            raise ValueError(f"model.img_size must be a multiple of 32 (ResNet stride), got {cfg.img_size}")
        self.img_size = int(cfg.img_size)
        self.num_classes = int(cfg.num_classes)
        self.limit_value = float(cfg.limit_value)
        self.encoder = PytorchcvResNet(
            stage_depths=tuple(cfg.stage_depths), width_multiplier=float(cfg.width_multiplier), rngs=rngs
        )
        c1, c2, c3, c4 = self.encoder.channels
        nf = int(cfg.num_filters)
        self.bifpn = BiFPN((c1, c2, c3), nf, int(cfg.bifpn_layers), rngs=rngs)
        # The official head zeroes the heatmap bias at construction (flax's default bias init).
        self.heatmap = nnx.Conv(
            nf, self.num_classes, (3, 3), padding=((1, 1), (1, 1)), kernel_init=TORCH_DEFAULT_INIT, rngs=rngs
        )
        fusion_cls = GatedFusion if cfg.fusion == "gated" else InceptionFusion
        self.fusion = fusion_cls(c3 + self.num_classes + nf, c3, rngs=rngs)
        n_shape_head = int(cfg.n_shape) + int(cfg.n_expr) + NUM_JAW_PARAMS
        hidden, p = int(cfg.head_hidden), float(cfg.dropout)
        self.shape_head = MLPHead(c4, hidden, n_shape_head, p, rngs=rngs)
        self.pose_head = MLPHead(c4, hidden, NUM_POSE_PARAMS, p, rngs=rngs)
        self.landmarks_head = MLPHead(c4, hidden, 2 * self.num_classes, p, rngs=rngs)

    def __call__(self, img: jax.Array) -> dict[str, jax.Array]:
        """Forward pass.

        Args:
          img: (B, S, S, 3) ImageNet-normalised RGB crops, S = `img_size` (256).

        Returns:
          heatmap_logits (B, S/4, S/4, 68); params_3dmm (B, 413) = [tanh x 3 (403) | pose (10)];
          landmarks (B, 68, 2) in units of the crop (x 256 -> pixels), >= 0;
          and intermediates for parity checks: enc_stage3 (B, S/16, S/16, 1024),
          bifpn_p3_out (B, S/4, S/4, 256), bifpn_p5_out (B, S/16, S/16, 256),
          fusion_out (B, S/16, S/16, 1024), enc_stage4 (B, S/32, S/32, 2048),
          pooled_stage4 (B, 2048), shape_head_raw (B, 403), pose_head_raw (B, 10),
          landmarks_head_raw (B, 136).
        """
        if img.ndim != 4 or img.shape[1:] != (self.img_size, self.img_size, 3):
            raise ValueError(
                f"DAD3DNet expects (B, {self.img_size}, {self.img_size}, 3) NHWC images, got {img.shape}"
            )
        _, _, stage3 = feats = self.encoder.stages_1_to_3(img)
        p3_out, _, p5_out, _, _ = self.bifpn(feats)
        logits = self.heatmap(p3_out)
        heat = jax.nn.sigmoid(resize_bilinear_align_corners(logits, stage3.shape[1:3]))
        fused = self.fusion(stage3, jnp.concatenate([stage3, heat.astype(stage3.dtype), p5_out], axis=-1))
        stage4 = self.encoder.stage4_forward(fused)
        pooled = jnp.mean(stage4, axis=(1, 2))
        shape_raw = self.shape_head(pooled)
        pose_raw = self.pose_head(pooled)
        lmk_raw = self.landmarks_head(pooled)
        params = jnp.concatenate([jnp.tanh(shape_raw) * self.limit_value, pose_raw], axis=-1)
        landmarks = jax.nn.relu(lmk_raw.reshape(lmk_raw.shape[0], self.num_classes, 2))
        return dict(
            heatmap_logits=logits,
            params_3dmm=params,
            landmarks=landmarks,
            enc_stage3=stage3,
            bifpn_p3_out=p3_out,
            bifpn_p5_out=p5_out,
            fusion_out=fused,
            enc_stage4=stage4,
            pooled_stage4=pooled,
            shape_head_raw=shape_raw,
            pose_head_raw=pose_raw,
            landmarks_head_raw=lmk_raw,
        )
