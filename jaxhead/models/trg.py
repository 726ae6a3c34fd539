"""TRG (Chun & Chang, ECCV 2024): iterative head pose and face geometry regression, Flax NNX.

Reproduces the official PyTorch `TRG` (asw91666/TRG-Release) in NHWC; the state-dict
conversion lives in `jaxhead.interop.trg`. One forward pass:

1. ResNet-18 trunk: (B, 192, 192, 3) -> (B, 6, 6, 512).
2. Three deconvolution blocks [ConvTranspose(k4, s2, p1, no bias), BN, ReLU] -> 256 channels
   at 12^2, 24^2, 48^2.
3. For each iteration i (nothing shared between iterations): sample point features on one
   scale, at the fixed 18x18 grid (i = 0) or at the 305 subsampled mesh vertices projected
   with the previous pose and `K_crop` (i > 0); a per-point MLP 256 -> 128 -> 64 -> 5 with
   skip concatenation [new, original]; flatten channel-major (index c N + n); then a purely
   linear regressor (fc1, fc2 with dropout, no activation) on [features, V_sub (vertex-major),
   pose (9), box feature (3)] predicts residuals of the 1220 world vertices and of the pose
   vector [rot6d (6), s, t~x, t~y]. Translation follows from (s, t~x, t~y) and the box (Eq. 2).
4. A 1x1 conv on the last map gives 68 heatmaps; their soft-argmax is the 68 landmarks in
   normalised crop coordinates.

Configuration (`model_config()`), besides the official defaults:
  num_iterations, multi_scale  With multi-scale, the last n - 1 iterations each take one
      deconvolution block and the first takes the remaining ones (n = 3: 12/24/48; n = 2:
      24/48; n = 1: 48), as the official code does; n <= 3. Without it every iteration
      samples the final 48^2 map (any n >= 1), the paper's "w/o MS" rows of Table 1.
  variant  The baselines of the paper's Table 1. The paper describes them in one line each;
      these are the design choices made here:
      "official"       TRG.
      "t_prediction"   The pose vector's last three entries are the translation in metres,
                       regressed directly (residually from `init_pose[6:]`, which must then
                       hold an initial translation) instead of Eq. 2's correction parameters.
                       Inputs, sampling and outputs are otherwise unchanged;
                       `pred_cor_param` then holds the translation.
      "landmark_free"  No face geometry: the regressors predict only the pose (no `decshape`,
                       no V_sub input), the face stays the initial face, every iteration samples
                       the grid (there is no mesh to project) and there is no landmark head
                       (no `pred_lmk68`). Pose is supervised through the camera-space and image
                       terms of the fixed initial face (Table 1 reports no mesh error for it).
      "grid_sampled"   Every iteration samples the fixed grid instead of projected mesh points;
                       geometry and landmarks as TRG.
  width_multiplier  Scales the ResNet-18 widths (64..512) and the deconvolution channels (256)
      for CPU-sized runs; 1.0 is the official network. `regressor_hidden` (1024) and
      `point_mlp_channels` (128, 64, 5) are separate knobs.
  img_size  The square crop side; the sampling points are normalised by it (u / img_size * 2 - 1,
      as the official code divides by 192). Must be a multiple of 32.

State: `init_face` (V, 3) metres (head frame), `init_pose` (9,), `points_grid` (G^2, 2) in
[-1, 1] with x varying slowly, and `subsample` (S,) vertex ids are `Buffer`s: checkpoints
carry them, optimizers (which take `nnx.Param`) do not touch them. Training from scratch:
decshape/decpose weights xavier_uniform(gain 0.01), every other layer PyTorch's default
initialisation. The official trunk starts from ImageNet weights, which are not bundled here
(see `jaxhead.interop.trg.load_torchvision_resnet18`).

Train/eval: `model.train()` (dropout 0.5, BatchNorm batch statistics) and `model.eval()`.
BatchNorm's running variance is updated with the biased batch variance (flax); torch uses the
unbiased one, a relative difference of 1/(B H W - 1), below 2e-4 at batch 1 on the 6x6 map.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from flame_jax.projection import project_pinhole, translation_from_correction
from flame_jax.rotations import rot6d_to_matrix_trg
from jaxhead.models import register_model
from jaxhead.models.buffers import Buffer
from jaxhead.models.torch_init import (
    TORCH_CONV_TRANSPOSE_INIT,
    TORCH_DEFAULT_INIT,
    torch_bias_init,
    xavier_uniform,
)
from jaxhead.models.batch_norm import batch_norm
from jaxhead.models.torchvision_resnet import ResNet18
from jaxhead.ops.conv_transpose import conv_transpose_4x4_stride2
from jaxhead.ops.grid_sample import grid_sample_points
from jaxhead.ops.soft_argmax import soft_argmax_2d

VARIANTS = ("official", "t_prediction", "landmark_free", "grid_sampled")
NUM_DECONV_BLOCKS = 3
POSE_DIM = 9  # [rot6d (6), s, t~x, t~y] (or [rot6d, tx, ty, tz] for "t_prediction")
BOX_FEATURE_DIM = 3
BOX_FEATURE_RESCALE = 4.0  # the official code scales the box-centre offsets by 4
TRUNK_WIDTHS = (64, 128, 256, 512)
# Placeholder translation (metres) of the "t_prediction" initial pose: keeps an un-restored
# model's projection finite; real runs pass the training set's mean translation.
PLACEHOLDER_DISTANCE = 0.5


def model_config() -> ml_collections.ConfigDict:
    """`config.model` for TRG; the defaults are the official network."""
    return ml_collections.ConfigDict(
        dict(
            name="trg",
            variant="official",  # one of VARIANTS (paper Table 1)
            num_iterations=3,
            multi_scale=True,
            img_size=192,
            num_vertices=1220,
            num_sampled=305,  # vertices projected for sampling (`subsample`)
            num_landmarks=68,
            grid_size=18,  # iteration-0 grid: grid_size^2 points
            dropout=0.5,
            width_multiplier=1.0,  # trunk and deconvolution widths; 1.0 = official
            deconv_channels=256,
            point_mlp_channels=(128, 64, 5),
            regressor_hidden=1024,
        )
    )


def points_grid(grid_size: int) -> np.ndarray:
    """The iteration-0 sampling grid, (G^2, 2) float32 (x, y) with x varying slowly.

    Point k = i G + j is (lin[i], lin[j]) with lin = torch.linspace(-1, 1, G) in float32.
    torch's CPU linspace computes start + step k for k < G/2 and end - step (G - 1 - k)
    above, with step rounded to float32; one rounding of the float64 value reproduces it.
    """
    step = np.float64(np.float32(2.0) / np.float32(grid_size - 1))
    k = np.arange(grid_size, dtype=np.float64)
    lin = np.where(k < grid_size // 2, -1.0 + step * k, 1.0 - step * (grid_size - 1 - k)).astype(np.float32)
    x, y = np.meshgrid(lin, lin, indexing="ij")
    return np.stack([x.reshape(-1), y.reshape(-1)], axis=-1)


def initial_pose(
    rotation: np.ndarray, cfg: ml_collections.ConfigDict, translation: np.ndarray | None = None
) -> np.ndarray:
    """The initial pose vector (9,) float32 for `cfg.variant`.

    [rot6d(R0), 1, 0, 0] (correction parameters s = 1, t~ = 0) for the Eq. 2 variants;
    [rot6d(R0), t0] for "t_prediction", which needs `translation` (3,) metres.
    """
    rotation = np.asarray(rotation, np.float32)
    rot6d = rotation[:, :2].reshape(6)
    if cfg.variant == "t_prediction":
        if translation is None:
            raise ValueError('variant "t_prediction" needs an initial translation (3,) in metres')
        tail = np.asarray(translation, np.float32).reshape(3)
    else:
        tail = np.array([1.0, 0.0, 0.0], np.float32)
    return np.concatenate([rot6d, tail]).astype(np.float32)


def _validate(cfg: ml_collections.ConfigDict) -> None:
    if cfg.variant not in VARIANTS:
        raise ValueError(f"config.model.variant must be one of {VARIANTS}, got {cfg.variant!r}")
    if cfg.num_iterations < 1:
        raise ValueError(f"config.model.num_iterations must be >= 1, got {cfg.num_iterations}")
    if cfg.multi_scale and cfg.num_iterations > NUM_DECONV_BLOCKS:
        raise ValueError(
            f"config.model.multi_scale gives each iteration its own deconvolution scale, so "
            f"num_iterations must be <= {NUM_DECONV_BLOCKS}, got {cfg.num_iterations}; "
            "set multi_scale=False for more iterations"
        )
    if cfg.img_size % 32:
        raise ValueError(f"config.model.img_size must be a multiple of 32, got {cfg.img_size}")


def _checked_buffer(
    value: np.ndarray | None, shape: tuple[int, ...], name: str, placeholder: np.ndarray
) -> np.ndarray:
    if value is None:
        return placeholder
    value = np.asarray(value)
    if value.shape != shape:
        raise ValueError(f"TRG buffer {name}: expected shape {shape} (from config.model), got {value.shape}")
    return value


class DeconvBlock(nnx.Module):
    """ConvTranspose2d(k4, s2, p1, no bias) -> BN -> ReLU: (B, H, W, in) -> (B, 2H, 2W, out).

    `kernel` (4, 4, out, in) is the torch weight (in, out, 4, 4) transposed by (2, 3, 1, 0).
    """

    def __init__(self, in_ch: int, out_ch: int, *, rngs: nnx.Rngs):
        self.kernel = nnx.Param(TORCH_CONV_TRANSPOSE_INIT(rngs.params(), (4, 4, out_ch, in_ch), jnp.float32))
        self.bn = batch_norm(out_ch, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.relu(self.bn(conv_transpose_4x4_stride2(x, self.kernel[...])))


def _linear(
    n_in: int, n_out: int, *, rngs: nnx.Rngs, kernel_init: nnx.Initializer = TORCH_DEFAULT_INIT
) -> nnx.Linear:
    return nnx.Linear(n_in, n_out, kernel_init=kernel_init, bias_init=torch_bias_init(n_in), rngs=rngs)


class PointSampler(nnx.Module):
    """Bilinear point features and the PIFu-style per-point MLP (official `LAF_Extractor`).

    Layer k > 0 takes [previous output, original feature]; leaky ReLU (0.01) after every
    layer but the last, ReLU after the last.
    """

    def __init__(self, in_ch: int, channels: tuple[int, ...], *, rngs: nnx.Rngs):
        sizes = [in_ch] + [c + in_ch for c in channels[:-1]]
        self.convs = nnx.List(
            [_linear(n_in, n_out, rngs=rngs) for n_in, n_out in zip(sizes, channels, strict=True)]
        )

    def __call__(self, feat_map: jax.Array, points: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(B, H, W, C) map, (B, N, 2) points in [-1, 1] -> point features (B, N, C) and the
        MLP output (B, c_last N) flattened channel-major (index c N + n)."""
        point_feat = grid_sample_points(feat_map, points)
        y = point_feat
        last = len(self.convs) - 1
        for k, layer in enumerate(self.convs):
            y = layer(y if k == 0 else jnp.concatenate([y, point_feat], axis=-1))
            y = jax.nn.relu(y) if k == last else jax.nn.leaky_relu(y, 0.01)
        flat = jnp.swapaxes(y, 1, 2).reshape(y.shape[0], -1)
        return point_feat, flat


class FaceRegressor(nnx.Module):
    """Purely linear fc1 -> dropout -> fc2 -> dropout, residual heads for the face and the pose."""

    def __init__(
        self,
        in_features: int,
        hidden: int,
        num_vertices: int,
        dropout: float,
        predict_face: bool,
        *,
        rngs: nnx.Rngs,
    ):
        self.fc1 = _linear(in_features, hidden, rngs=rngs)
        self.drop1 = nnx.Dropout(dropout, rngs=rngs)
        self.fc2 = _linear(hidden, hidden, rngs=rngs)
        self.drop2 = nnx.Dropout(dropout, rngs=rngs)
        head_init = xavier_uniform(0.01)
        self.decshape = (
            _linear(hidden, num_vertices * 3, rngs=rngs, kernel_init=head_init) if predict_face else None
        )
        self.decpose = _linear(hidden, POSE_DIM, rngs=rngs, kernel_init=head_init)

    def __call__(
        self, feat: jax.Array, face: jax.Array, pose: jax.Array, box_feat: jax.Array, subsample: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """feat (B, F), face (B, V, 3), pose (B, 9), box_feat (B, 3), subsample (S,) ->
        (face (B, V, 3), pose (B, 9)) after one residual update."""
        B = face.shape[0]
        parts = [feat]
        if self.decshape is not None:
            parts.append(face[:, subsample].reshape(B, -1))  # vertex-major x, y, z
        parts += [pose, box_feat]
        h = self.drop2(self.fc2(self.drop1(self.fc1(jnp.concatenate(parts, axis=-1)))))
        if self.decshape is not None:
            face = self.decshape(h).reshape(face.shape) + face
        return face, self.decpose(h) + pose


def box_feature(bbox_info: jax.Array) -> jax.Array:
    """(B, 7) [l, t, r, b, f, H, W] -> (B, 3) [4 (cx - W/2) / f, 4 (cy - H/2) / f, (r - l) / f]."""
    left, top, right, bottom, f, H, W = (bbox_info[:, k] for k in range(7))
    cx, cy = (left + right) * 0.5, (top + bottom) * 0.5
    return jnp.stack(
        [
            (cx - W * 0.5) / f * BOX_FEATURE_RESCALE,
            (cy - H * 0.5) / f * BOX_FEATURE_RESCALE,
            (right - left) / f,
        ],
        axis=-1,
    )


@register_model("trg")
class TRG(nnx.Module):
    """The TRG network. See the module docstring for the configuration."""

    def __init__(
        self,
        cfg: ml_collections.ConfigDict,
        *,
        rngs: nnx.Rngs,
        init_face: np.ndarray | None = None,
        init_pose: np.ndarray | None = None,
        subsample: np.ndarray | None = None,
    ):
        """`init_face` (V, 3) metres, `init_pose` (9,), `subsample` (S,) vertex ids; None gives
        placeholders of the configured shapes (for restoring a checkpoint)."""
        _validate(cfg)
        self.variant = cfg.variant
        self.num_iterations = int(cfg.num_iterations)
        self.multi_scale = bool(cfg.multi_scale)
        self.img_size = int(cfg.img_size)
        self.predict_face = cfg.variant != "landmark_free"
        V, S, G = int(cfg.num_vertices), int(cfg.num_sampled), int(cfg.grid_size)
        placeholder_pose = initial_pose(np.eye(3), cfg, np.array([0.0, 0.0, PLACEHOLDER_DISTANCE]))
        self.init_face = Buffer(
            jnp.asarray(_checked_buffer(init_face, (V, 3), "init_face", np.zeros((V, 3))), jnp.float32)
        )
        self.init_pose = Buffer(
            jnp.asarray(_checked_buffer(init_pose, (POSE_DIM,), "init_pose", placeholder_pose), jnp.float32)
        )
        sub = _checked_buffer(subsample, (S,), "subsample", np.linspace(0, V - 1, S).astype(np.int32))
        if sub.min() < 0 or sub.max() >= V:
            raise ValueError(
                f"TRG buffer subsample: vertex ids must lie in [0, {V}), got [{sub.min()}, {sub.max()}]"
            )
        self.subsample = Buffer(jnp.asarray(sub, jnp.int32))
        self.points_grid = Buffer(jnp.asarray(points_grid(G)))

        w = float(cfg.width_multiplier)
        widths = tuple(max(1, round(c * w)) for c in TRUNK_WIDTHS)
        channels = max(1, round(int(cfg.deconv_channels) * w))
        mlp = tuple(int(c) for c in cfg.point_mlp_channels)
        self.trunk = ResNet18(widths, rngs=rngs)
        self.deconv = nnx.List(
            [
                DeconvBlock(widths[-1] if k == 0 else channels, channels, rngs=rngs)
                for k in range(NUM_DECONV_BLOCKS)
            ]
        )
        samplers, regressors = [], []
        for i in range(self.num_iterations):
            n_points = S if self._samples_mesh(i) else G * G
            in_features = (
                n_points * mlp[-1] + (S * 3 if self.predict_face else 0) + POSE_DIM + BOX_FEATURE_DIM
            )
            samplers.append(PointSampler(channels, mlp, rngs=rngs))
            regressors.append(
                FaceRegressor(
                    in_features,
                    int(cfg.regressor_hidden),
                    V,
                    float(cfg.dropout),
                    self.predict_face,
                    rngs=rngs,
                )
            )
        self.samplers = nnx.List(samplers)
        self.regressors = nnx.List(regressors)
        if self.predict_face:
            self.landmark_head = nnx.Conv(
                channels,
                int(cfg.num_landmarks),
                (1, 1),
                kernel_init=TORCH_DEFAULT_INIT,
                bias_init=torch_bias_init(channels),
                rngs=rngs,
            )
        else:
            self.landmark_head = None

    def _samples_mesh(self, i: int) -> bool:
        """Whether iteration i samples projected mesh points (else the fixed grid)."""
        return i > 0 and self.variant in ("official", "t_prediction")

    def _state(self, face: jax.Array, pose: jax.Array, bbox_info: jax.Array) -> dict[str, jax.Array]:
        """Pose outputs of one iteration: R, t (column form) and the camera-space face."""
        R = rot6d_to_matrix_trg(pose[:, :6])
        if self.variant == "t_prediction":
            t = pose[:, 6:]
        else:
            t = translation_from_correction(pose[:, 6:], bbox_info[:, :4], bbox_info[:, 4], bbox_info[:, 5:7])
        cam = jnp.einsum("bij,bnj->bni", R, face) + t[:, None, :]
        return dict(
            pred_face_world=face, pred_pose=pose, R=R, t=t, pred_face_cam=cam, pred_cor_param=pose[:, 6:]
        )

    def __call__(self, img: jax.Array, K_crop: jax.Array, bbox_info: jax.Array) -> dict:
        """Runs all iterations.

        Args:
          img: (B, H, W, 3) ImageNet-normalised crop, H = W = img_size.
          K_crop: (B, 3, 3) crop intrinsics, column-vector form.
          bbox_info: (B, 7) [l, t, r, b, f, H_full, W_full], full-image pixels.

        Returns:
          output: list over [initial state, iteration 1, ...] of dicts with pred_face_world
            (B, V, 3) head frame, pred_pose (B, 9), R (B, 3, 3), t (B, 3) (X_cam = R X + t),
            pred_face_cam (B, V, 3), pred_cor_param (B, 3). The initial state's R, t and
            camera face come from `init_pose` (the official code leaves them undefined).
          pred_lmk68: (B, L, 2) soft-argmax landmarks in [-1, 1] crop coordinates (not for
            "landmark_free").
          samp_pt: list of (B, S, 2) crop-pixel sampling points of the mesh-sampling iterations.
          point_feat: list per iteration of (B, N, C) features before the point MLP.
          mlp_feat: list per iteration of (B, 5 N) MLP outputs, channel-major.
          feat_trunk: (B, h, w, 512); feat_deconv: list of the 3 deconvolution outputs;
          lmk68_heatmap_logits: (B, 4h', 4w', L) (not for "landmark_free").
        """
        B = img.shape[0]
        trunk = self.trunk(img)
        maps, x = [], trunk
        for block in self.deconv:
            x = block(x)
            maps.append(x)
        box_feat = box_feature(bbox_info)
        subsample = self.subsample[...]
        face = jnp.broadcast_to(self.init_face[...][None], (B,) + self.init_face[...].shape)
        pose = jnp.broadcast_to(self.init_pose[...][None], (B, POSE_DIM))
        state = self._state(face, pose, bbox_info)
        out: dict = dict(
            output=[state], samp_pt=[], point_feat=[], mlp_feat=[], feat_trunk=trunk, feat_deconv=maps
        )
        for i in range(self.num_iterations):
            feat_map = maps[NUM_DECONV_BLOCKS - self.num_iterations + i] if self.multi_scale else maps[-1]
            if self._samples_mesh(i):
                pixels = project_pinhole(state["pred_face_cam"][:, subsample], K_crop)
                points = pixels / self.img_size * 2.0 - 1.0
                out["samp_pt"].append(pixels)
            else:
                points = jnp.broadcast_to(self.points_grid[...][None], (B,) + self.points_grid[...].shape)
            point_feat, mlp_feat = self.samplers[i](feat_map, points)
            face, pose = self.regressors[i](mlp_feat, face, pose, box_feat, subsample)
            state = self._state(face, pose, bbox_info)
            out["output"].append(state)
            out["point_feat"].append(point_feat)
            out["mlp_feat"].append(mlp_feat)
        if self.landmark_head is not None:
            logits = self.landmark_head(maps[-1])
            H, W = logits.shape[1:3]
            lmk = soft_argmax_2d(logits)
            out["pred_lmk68"] = lmk / jnp.array([W, H], lmk.dtype) * 2.0 - 1.0
            out["lmk68_heatmap_logits"] = logits
        return out
