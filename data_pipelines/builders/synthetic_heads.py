"""`synthetic_heads`: renders of the embedded synthetic FLAME-format head model (the default dataset).

Each example is one head with a random identity, expression and jaw, a random global pose
(yaw uniform in ±90°, pitch and roll normal with σ 20° and 15°, clipped to ±60° and ±45°), a random
metric distance (0.3 to 1.2 m) and a random camera (focal length chosen so the head spans 25 to 50%
of the image, principal point jittered around the centre).

Splits: `train`, `test` and `test_ood`, an out-of-distribution test set, the analogue of TRG's
ARKitFace -> BIWI shift (paper Fig. 3): the same identities, expressions, poses and looks, but the
head 1.4 to 2.4 m away, outside the training range, with the correspondingly longer focal lengths
(the head still spans 25 to 50%). The metric translation moves far out of range while TRG's
box-correction scale s = tz b / (0.2 f) barely moves (docs/datasets.md measures both). Lighting (direction, ambient, diffuse),
skin and hair colour, the background (smooth colour fields, noise, stripes) and occluders (bars and
blobs over part of the face, p = 0.35) vary too. Rendering uses the JAX rasterizer, batched.

Fields (docs/datasets.md, conventions of docs/conventions.md):
  id, image (JPEG), K, R, t, has_rot/has_translation/has_3d (all true), face_vertices (1220, 3) head
  frame, vertices (V, 3) model space, landmarks_2d (68, 2) with landmarks_visible (68,) (in the image,
  within VISIBLE_DEPTH_M of the visible surface, not under an occluder), head_box [l, t, r, b] (the head without the neck, clipped
  to the image), model_view_matrix / projection_matrix (DAD-3DHeads form), and the FLAME-format
  parameters flame_shape (300,), flame_expression (100,), flame_jaw (3,) axis-angle.

The 68 landmarks use the frontal contour (row 0 of the dynamic embedding), as DAD-3DHeads does.
Everything is a deterministic function of (split, example index): rebuilding gives the same data.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, ImageDraw
from tqdm import tqdm

from data_pipelines.builders import features as F
from flame_jax.landmarks import landmarks_68
from flame_jax.lbs import lbs
from flame_jax.model import FlameModel
from flame_jax.rotations import euler_yxz_to_matrix
from flame_jax.synthetic import FLIP_YZ, NUM_EXPR, NUM_SHAPE, SyntheticHead, head_assets
from flame_jax.render import project_to_screen, render_lambert, tile_capacity

RENDER_BATCH = 32
HEAD_WIDTH_M = 0.18  # the synthetic head's ear-to-ear width, to size it in pixels
OCCLUDER_P = 0.35
# A landmark counts as visible within this depth of the visible surface: jaw-contour and lower-lid
# points sit just behind the cheek silhouette and the eyeball in frontal views.
VISIBLE_DEPTH_M = 0.015
NEAR, FAR = 0.01, 10.0  # depth range of the OpenGL projection matrix
_SPLIT_STREAM = {"train": 0, "test": 1, "test_ood": 2}
# Camera distance range (m) per split; test_ood lies outside the training range.
DISTANCE_M = {"train": (0.3, 1.2), "test": (0.3, 1.2), "test_ood": (1.4, 2.4)}


@dataclasses.dataclass
class SyntheticConfig(tfds.core.BuilderConfig):
    num_train: int = 0
    num_test: int = 0
    num_test_ood: int = 0
    image_size: int = 256


def model_view_matrix(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(..., 3, 3), (..., 3) head-frame pose -> (..., 4, 4) DAD-3DHeads MV acting on model-space vertices."""
    gl = np.diag([1.0, -1.0, -1.0])
    mv = np.zeros(R.shape[:-2] + (4, 4))
    mv[..., :3, :3] = gl @ R @ FLIP_YZ
    mv[..., :3, 3] = np.einsum("ij,...j->...i", gl, t)
    mv[..., 3, 3] = 1.0
    return mv


def projection_matrix(K: np.ndarray, height: float) -> np.ndarray:
    """(..., 3, 3) intrinsics -> (..., 4, 4) OpenGL projection with the viewport in pixels, bottom-left origin."""
    P = np.zeros(K.shape[:-2] + (4, 4))
    P[..., 0, 0], P[..., 0, 2] = K[..., 0, 0], -K[..., 0, 2]
    P[..., 1, 1], P[..., 1, 2] = K[..., 1, 1], -(height - K[..., 1, 2])
    P[..., 2, 2], P[..., 2, 3] = -(FAR + NEAR) / (FAR - NEAR), -2.0 * FAR * NEAR / (FAR - NEAR)
    P[..., 3, 2] = -1.0
    return P


def sample_scene(
    rng: np.random.Generator, n: int, size: int, distance: tuple[float, float] = DISTANCE_M["train"]
) -> dict[str, np.ndarray]:
    """Random parameters of n scenes (float64 arrays with a leading n axis), the head `distance` m away."""
    expr_scale = rng.uniform(0.3, 1.2, (n, 1))
    jaw = np.stack(
        [np.clip(np.abs(rng.normal(0.0, 0.15, n)), 0.0, 0.4), rng.normal(0, 0.02, n), rng.normal(0, 0.02, n)], 1
    )
    euler = np.stack(
        [rng.uniform(-90, 90, n), np.clip(rng.normal(0, 20, n), -60, 60), np.clip(rng.normal(0, 15, n), -45, 45)], 1
    )
    z = rng.uniform(*distance, n)
    focal = rng.uniform(0.25, 0.5, n) * size * z / HEAD_WIDTH_M
    c = size / 2.0 + rng.normal(0.0, 0.03 * size, (n, 2))
    K = np.zeros((n, 3, 3))
    K[:, 0, 0] = K[:, 1, 1] = focal
    K[:, :2, 2] = c
    K[:, 2, 2] = 1.0
    centre_px = rng.uniform(0.38, 0.62, (n, 2)) * size
    t = np.concatenate([(centre_px - c) * z[:, None] / focal[:, None], z[:, None]], axis=1)
    light = np.stack([rng.uniform(-1, 1, n), rng.uniform(-1, 0.6, n), -rng.uniform(0.3, 1.0, n)], 1)
    return dict(
        shape=rng.standard_normal((n, NUM_SHAPE)),
        expression=np.clip(rng.standard_normal((n, NUM_EXPR)) * expr_scale, -2.5, 2.5),
        jaw=jaw,
        euler=euler,
        K=K,
        t=t,
        light=light / np.linalg.norm(light, axis=1, keepdims=True),
        ambient=rng.uniform(0.25, 0.6, n),
        diffuse=rng.uniform(0.45, 0.9, n),
        skin=rng.uniform(0.55, 1.15, (n, 1)) * rng.uniform(0.9, 1.1, (n, 3)),
        hair=rng.uniform(0.03, 0.6, (n, 1)) * rng.uniform(0.6, 1.4, (n, 3)),
    )


@jax.jit
def _geometry(model: FlameModel, betas: jax.Array, jaw: jax.Array, euler: jax.Array, t: jax.Array, K: jax.Array):
    """Model-space vertices, camera-space vertices, screen vertices and the 68 landmarks (camera)."""
    pose = jnp.zeros(betas.shape[:-1] + (15,)).at[..., 6:9].set(jaw)
    verts, _ = lbs(model, betas, pose)
    R = euler_yxz_to_matrix(euler) @ jnp.asarray(FLIP_YZ, verts.dtype)
    cam = jnp.einsum("bij,bnj->bni", R, verts) + t[:, None]
    lmk = landmarks_68(model, verts, contour="frontal")
    lmk_cam = jnp.einsum("bij,bnj->bni", R, lmk) + t[:, None]
    return verts, cam, project_to_screen(cam, K), lmk_cam


@functools.partial(jax.jit, static_argnums=(0,))
def _render(
    capacity: int, faces: jax.Array, cam: jax.Array, K: jax.Array, albedo: jax.Array, light: jax.Array,
    ambient: jax.Array, diffuse: jax.Array, background: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Batched Lambert renders: images (B, H, W, 3), depth (B, H, W), overflow (B,)."""

    def one(v, k, a, l, am, di, bg):  # noqa: E741
        r = render_lambert(v, faces, k, a, l, am, bg, diffuse=di, capacity=capacity)
        return r.image, r.depth, r.fragments.overflow

    return jax.vmap(one)(cam, K, albedo, light, ambient, diffuse, background)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float32 in [0, 1]: a smooth colour field, noise and sometimes stripes."""
    cells = int(rng.integers(2, 12))
    field = rng.uniform(0, 1, (cells, cells, 3)) * rng.uniform(0.3, 1.0)
    img = np.asarray(Image.fromarray((255 * field).astype(np.uint8)).resize((size, size), Image.BICUBIC), np.float32)
    img = img / 255.0 + rng.normal(0.0, rng.uniform(0.0, 0.08), (size, size, 3))
    if rng.uniform() < 0.3:
        period, phase = rng.uniform(6, 40), rng.uniform(0, 2 * np.pi)
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[:size, :size]
        stripes = np.sin((np.cos(angle) * xx + np.sin(angle) * yy) / period * 2 * np.pi + phase) > 0
        img = np.where(stripes[..., None], img * rng.uniform(0.5, 1.0), img)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _occluder(rng: np.random.Generator, size: int, box: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """A random bar or blob over part of the head box: (mask (size, size) bool, colour image) or None."""
    if rng.uniform() >= OCCLUDER_P:
        return None
    l, t, r, b = box
    w, h = max(r - l, 4.0), max(b - t, 4.0)
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    cx, cy = rng.uniform(l + 0.2 * w, r - 0.2 * w), rng.uniform(t + 0.25 * h, b - 0.2 * h)
    if rng.uniform() < 0.5:  # a bar across the face at a random angle
        angle = rng.uniform(0, np.pi)
        half_len, half_thick = rng.uniform(0.4, 1.0) * w, rng.uniform(0.06, 0.16) * h
        d, n = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
        corners = [np.array([cx, cy]) + sa * half_len * d + sb * half_thick * n for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
        draw.polygon([tuple(p) for p in corners], fill=255)
    else:  # a blob (a hand, a cup): an ellipse
        rx, ry = rng.uniform(0.12, 0.3) * w, rng.uniform(0.12, 0.3) * h
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    colour = rng.uniform(0, 1, 3) * (1.0 + rng.normal(0, 0.08, (size, size, 1)))
    return np.asarray(mask) > 0, np.clip(colour, 0, 1).astype(np.float32)


def _head_box(screen: np.ndarray, size: int) -> np.ndarray:
    l, t = screen.min(0)
    r, b = screen.max(0)
    return np.clip(np.array([l, t, r, b]), 0.0, float(size))


def render_examples(
    head: SyntheticHead, split: str, start: int, n: int, size: int
) -> Iterator[tuple[str, dict[str, object]]]:
    """Renders examples start..start+n-1 of `split` (n <= RENDER_BATCH); yields (key, example)."""
    rng = np.random.default_rng([_SPLIT_STREAM[split], start, size])
    # Always a full batch, so the jitted functions see one shape.
    p = sample_scene(rng, RENDER_BATCH, size, DISTANCE_M[split])
    betas = np.concatenate([p["shape"], p["expression"]], 1)
    verts, cam, screen, lmk_cam = jax.device_get(
        _geometry(head.model, jnp.asarray(betas, jnp.float32), jnp.asarray(p["jaw"], jnp.float32),
                  jnp.asarray(p["euler"], jnp.float32), jnp.asarray(p["t"], jnp.float32), jnp.asarray(p["K"], jnp.float32))
    )
    capacity = tile_capacity(screen, np.asarray(head.model.faces), size, size)
    region = np.asarray(head.region)
    tint = np.ones((RENDER_BATCH, len(region), 3), np.float32)
    tint[:, region == 0] = p["skin"][:, None]
    albedo = np.clip(head.albedo[None] * tint, 0, 1)
    albedo[:, region == 1] = p["hair"][:, None]
    albedo[:, region == 2] = 0.8 * p["hair"][:, None]
    backgrounds = np.stack([_background(rng, size) for _ in range(RENDER_BATCH)])
    images, depth, overflow = jax.device_get(
        _render(capacity, head.model.faces, cam, jnp.asarray(p["K"], jnp.float32), jnp.asarray(albedo), jnp.asarray(p["light"], jnp.float32),
                jnp.asarray(p["ambient"], jnp.float32), jnp.asarray(p["diffuse"], jnp.float32), jnp.asarray(backgrounds))
    )
    if np.any(overflow):
        raise RuntimeError("synthetic_heads: rasterizer work list overflowed (tile_capacity too small)")
    R = np.asarray(euler_yxz_to_matrix(p["euler"]), np.float64)
    K, t = p["K"], p["t"]
    MV, P = model_view_matrix(R, t), projection_matrix(K, size)
    head_ids = np.asarray(head.model.subsets["face_w_ears"])
    for i in range(n):
        image = images[i]
        box = _head_box(screen[i, head_ids, :2], size)
        lmk_px = (K[i] @ lmk_cam[i].T).T
        lmk_px = lmk_px[:, :2] / lmk_px[:, 2:]
        inside = np.all((lmk_px >= 0) & (lmk_px < size), axis=1)
        px = np.clip(lmk_px.astype(int), 0, size - 1)
        surface = depth[i][px[:, 1], px[:, 0]]
        visible = inside & (lmk_cam[i, :, 2] <= surface + VISIBLE_DEPTH_M)
        occ = _occluder(rng, size, box)
        if occ is not None:
            mask, colour = occ
            image = np.where(mask[..., None], colour, image)
            visible &= ~mask[px[:, 1], px[:, 0]]
        example_id = f"{split}_{start + i:06d}"
        yield example_id, dict(
            id=example_id,
            image=F.encode_image((255 * image + 0.5).astype(np.uint8), "jpeg", quality=92),
            K=K[i].astype(np.float32),
            R=R[i].astype(np.float32),
            t=t[i].astype(np.float32),
            has_rot=True,
            has_translation=True,
            has_3d=True,
            face_vertices=(verts[i][head.face_region] @ FLIP_YZ.T).astype(np.float32),
            vertices=verts[i].astype(np.float32),
            landmarks_2d=lmk_px.astype(np.float32),
            landmarks_visible=visible,
            head_box=box.astype(np.float32),
            model_view_matrix=MV[i].astype(np.float32),
            projection_matrix=P[i].astype(np.float32),
            flame_shape=p["shape"][i].astype(np.float32),
            flame_expression=p["expression"][i].astype(np.float32),
            flame_jaw=p["jaw"][i].astype(np.float32),
        )


class SyntheticHeads(tfds.core.GeneratorBasedBuilder):
    """Renders of the embedded synthetic FLAME-format head model (see the module docstring)."""

    name = "synthetic_heads"
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.1.0": "test_ood split (the head 1.4 to 2.4 m away); train and test unchanged."}
    BUILDER_CONFIGS = [
        SyntheticConfig(name="tiny", description="64 train / 32 test / 32 test_ood at 128 px, for tests", num_train=64, num_test=32, num_test_ood=32, image_size=128),
        SyntheticConfig(name="small", description="2,048 train / 512 test / 512 test_ood at 256 px", num_train=2048, num_test=512, num_test_ood=512),
        SyntheticConfig(name="default", description="20,480 train / 2,048 test / 2,048 test_ood at 256 px", num_train=20480, num_test=2048, num_test_ood=2048),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self) -> tfds.core.DatasetInfo:
        V = int(head_assets(0).model.v_template.shape[0])
        return F.dataset_info(
            self,
            __doc__,
            id=tfds.features.Text(),
            image=F.image_feature("jpeg"),
            K=F.tensor(3, 3),
            R=F.tensor(3, 3),
            t=F.tensor(3),
            has_rot=F.scalar_bool(),
            has_translation=F.scalar_bool(),
            has_3d=F.scalar_bool(),
            face_vertices=F.tensor(1220, 3),
            vertices=F.tensor(V, 3),
            landmarks_2d=F.tensor(68, 2),
            landmarks_visible=F.tensor(68, dtype=np.bool_),
            head_box=F.tensor(4),
            model_view_matrix=F.tensor(4, 4),
            projection_matrix=F.tensor(4, 4),
            flame_shape=F.tensor(NUM_SHAPE),
            flame_expression=F.tensor(NUM_EXPR),
            flame_jaw=F.tensor(3),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        cfg = self.builder_config
        sizes = {"train": cfg.num_train, "test": cfg.num_test, "test_ood": cfg.num_test_ood}
        return {split: self._generate_examples(split, n) for split, n in sizes.items()}

    def _generate_examples(self, split: str, num: int) -> Iterator[tuple[str, dict[str, object]]]:
        head = head_assets(0)
        size = self.builder_config.image_size
        with tqdm(total=num, desc=f"rendering {split}", unit="img", file=sys.stderr) as bar:
            for start in range(0, num, RENDER_BATCH):
                n = min(RENDER_BATCH, num - start)
                yield from render_examples(head, split, start, n, size)
                bar.update(n)
