"""TRG's training augmentation on the device (spec trg.md §8-9), the JAX twin of
`data_pipelines.pipelines.trg.TRGTransform.apply`: flip with the vertex permutation, centre/scale
jitter of the landmark box, in-plane rotation (about the projected head origin for 3D examples, about
the crop centre for 2D-only ones, whose box is kept inside the image), the crop warp, colour jitter
and the 2D-only mask patch, with K, K_crop, bbox_info, R, t and the vertex labels to match.

Input: the host batch of `TRGTransform.host_fields` (image (B, H, W, 3) uint8, K, R, t, vtx_world,
landmarks_2d, has_3d_vtx, has_rot, optional eval_vertices). Output: the batch of `TRGTransform`
(docs/datasets.md) without `id`.
"""

from __future__ import annotations

import dataclasses
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from data_pipelines.augment import image as im
from data_pipelines.pipelines.trg import MASK_PATCH_P
from data_pipelines.topology import FaceTopology

S_FLIP = jnp.diag(jnp.array([-1.0, 1.0, 1.0]))


@dataclasses.dataclass(frozen=True)
class TRGAugment:
    """The static side of the augmentation: crop size, box scale, `config.data.augment` and topology."""

    size: int
    box_scale: float
    flip_p: float
    centre_jitter: float
    scale_jitter: tuple[float, float]
    rotate_p: float
    rotate_deg: float
    color_jitter: tuple[float, float, float, float]
    kpt_ind: np.ndarray  # (68,) face-vertex index of each landmark
    flip_index: np.ndarray  # (1220,) mirror vertex of each vertex

    @classmethod
    def from_config(cls, data: ml_collections.ConfigDict, topology: FaceTopology) -> "TRGAugment":
        aug = data.augment
        if topology.flip_index is None and aug.flip_p > 0:
            raise ValueError(
                "the flip augmentation needs the face mesh's mirror map: set config.data.flip_index_path "
                "(ARKitFace's flip_index.npy) or --config.data.augment.flip_p=0"
            )
        n = len(topology.init_face)
        flip_index = np.arange(n) if topology.flip_index is None else np.asarray(topology.flip_index)
        return cls(
            size=int(data.img_size), box_scale=float(data.box_scale), flip_p=float(aug.flip_p),
            centre_jitter=float(aug.centre_jitter), scale_jitter=tuple(aug.scale_jitter), rotate_p=float(aug.rotate_p),
            rotate_deg=float(aug.rotate_deg), color_jitter=tuple(aug.color_jitter),
            kpt_ind=np.asarray(topology.kpt_ind), flip_index=flip_index,
        )


def sample(key: jax.Array, has_3d: jax.Array, spec: TRGAugment) -> dict[str, jax.Array]:
    """(B,) bool has_3d -> per-example parameters with a leading B axis: flip (B,) bool (3D examples
    only), shift (B, 2) x box size, scale (B,), rotate (B,) bool, phi (B,) rad (0 unless rotate),
    colour_order (B, 4) int32, colour_values (B, 4), mask (B,) bool (2D-only examples), mask_yx (B, 2)
    int32, mask_colour (B, 3) int32 — the distribution of `TRGTransform.sample_params`."""
    b, c, s, h = spec.color_jitter
    side = spec.size // 5

    def one(k: jax.Array, h3: jax.Array) -> dict[str, jax.Array]:
        ks = jax.random.split(k, 13)
        u = lambda i, lo=0.0, hi=1.0, shape=(): jax.random.uniform(ks[i], shape, minval=lo, maxval=hi)  # noqa: E731
        rotate = u(3) < spec.rotate_p
        return dict(
            flip=h3 & (u(0) < spec.flip_p),
            shift=u(1, -spec.centre_jitter, spec.centre_jitter, (2,)),
            scale=u(2, *spec.scale_jitter),
            rotate=rotate,
            phi=jnp.where(rotate, jnp.deg2rad(u(4, -spec.rotate_deg, spec.rotate_deg)), 0.0),
            colour_order=jax.random.permutation(ks[5], 4).astype(jnp.int32),
            colour_values=jnp.stack([u(6, 1 - b, 1 + b), u(7, 1 - c, 1 + c), u(8, 1 - s, 1 + s), u(9, -h, h)]),
            mask=~h3 & (u(10) < MASK_PATCH_P),
            mask_yx=jax.random.randint(ks[11], (2,), 0, spec.size - side),
            mask_colour=jax.random.randint(ks[12], (3,), 0, 256),
        )

    return jax.vmap(one)(jax.random.split(key, has_3d.shape[0]), has_3d)


def _project(K: jax.Array, cam: jax.Array) -> jax.Array:
    """(3, 3), (N, 3) -> (N, 2) pixels."""
    uvw = cam @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


def _landmark_box(lmk: jax.Array, scale: jax.Array, shift: jax.Array) -> jax.Array:
    """The int-truncated square box [l, t, r, b] of `data_pipelines.pipelines.trg.landmark_box`."""
    lo, hi = lmk.min(0), lmk.max(0)
    size = jnp.max(hi - lo)
    centre = (lo + hi) / 2.0 + shift * size
    half = 0.5 * scale * size
    return jnp.trunc(jnp.concatenate([centre - half, centre + half]))


def _rz(phi: jax.Array) -> jax.Array:
    c, s = jnp.cos(phi), jnp.sin(phi)
    z, o = jnp.zeros_like(phi), jnp.ones_like(phi)
    return jnp.stack([jnp.stack([c, -s, z]), jnp.stack([s, c, z]), jnp.stack([z, z, o])])


def _apply_one(ex: dict[str, jax.Array], p: dict[str, jax.Array], spec: TRGAugment) -> dict[str, jax.Array]:
    image = ex["image"]
    H, W = image.shape[:2]
    size = spec.size
    has_3d, flip, rotate = ex["has_3d_vtx"] > 0, p["flip"], p["rotate"]
    kpt = jnp.asarray(spec.kpt_ind)

    world = jnp.where(flip, ex["vtx_world"][jnp.asarray(spec.flip_index)] @ S_FLIP, ex["vtx_world"])
    R = jnp.where(flip, S_FLIP @ ex["R"] @ S_FLIP, ex["R"])
    t = jnp.where(flip, S_FLIP @ ex["t"], ex["t"])
    K = ex["K"].at[0, 2].set(jnp.where(flip, W - ex["K"][0, 2], ex["K"][0, 2]))

    lmk = jnp.where(has_3d, _project(K, world[kpt] @ R.T + t), ex["landmarks_2d"])
    box = _landmark_box(lmk, spec.box_scale * p["scale"], p["shift"])
    # 3D: re-centre on the projected head origin and turn about it (R turns with the image).
    origin = _project(K, t[None])[0]
    half = (box[2] - box[0]) / 2.0
    box_3d = jnp.where(rotate, jnp.trunc(jnp.concatenate([origin - half, origin + half])), box)
    warp_3d = im.compose(im.box_to_crop(box_3d, size), im.rotation_about(origin, p["phi"]))
    # 2D-only: the box kept inside the image, the rotation about the crop centre.
    side = box[2] - box[0]
    dx = jnp.clip(box[0], 0, jnp.maximum(W - side, 0)) - box[0]
    dy = jnp.clip(box[1], 0, jnp.maximum(H - side, 0)) - box[1]
    box_2d = box + jnp.stack([dx, dy, dx, dy])
    warp_2d = im.compose(im.rotation_about(jnp.full(2, size / 2.0), p["phi"]), im.box_to_crop(box_2d, size))
    box = jnp.where(has_3d, box_3d, box_2d)
    crop_from_image = jnp.where(has_3d, warp_3d, warp_2d)
    R = jnp.where(has_3d & rotate, _rz(p["phi"]) @ R, R)

    # The flip is a map of the source too: flipped pixel x is source pixel W - x.
    mirror = jnp.array([[-1.0, 0.0, W], [0.0, 1.0, 0.0]])
    source_from_crop = im.invert(crop_from_image)
    source_from_crop = jnp.where(flip, im.compose(mirror, source_from_crop), source_from_crop)
    crop = im.color_jitter(im.warp(image, source_from_crop, (size, size)), p["colour_order"], p["colour_values"])
    ys, xs = jnp.meshgrid(jnp.arange(size), jnp.arange(size), indexing="ij")
    y0, x0 = p["mask_yx"][0], p["mask_yx"][1]
    patch = (ys >= y0) & (ys < y0 + size // 5) & (xs >= x0) & (xs < x0 + size // 5) & p["mask"] & ~has_3d
    crop = jnp.where(patch[..., None], p["mask_colour"] / 255.0, crop)

    b = box[2] - box[0]
    cam = world @ R.T + t
    pix = _project(K, cam)
    crop_px = im.apply_affine(crop_from_image, lmk)
    inside = jnp.all((crop_px >= 0) & (crop_px < size), axis=1, keepdims=True)
    lmk_crop = jnp.where(has_3d, (pix[kpt] - box[:2]) / b * 2.0 - 1.0, crop_px / size * 2.0 - 1.0)
    conf = jnp.where(has_3d, 1.0, inside.astype(jnp.float32))
    k = size / b
    K_crop = jnp.concatenate([k * (K[:2] - box[:2, None] * K[2]), K[2:]], 0)  # crop_intrinsics
    return dict(
        img=im.normalize(crop),
        K=K,
        K_crop=K_crop,
        bbox_info=jnp.concatenate([box, jnp.stack([K[0, 0], jnp.float32(H), jnp.float32(W)])]),
        R=jnp.where(ex["has_rot"] > 0, R, jnp.eye(3)),
        t=t,
        vtx_world=world,
        vtx_cam=cam,
        vtx_img=jnp.where(has_3d, jnp.concatenate([pix, jnp.ones_like(pix[:, :1])], 1), 0.0),
        lmk68_crop=jnp.concatenate([lmk_crop, conf], 1),
        has_3d_vtx=ex["has_3d_vtx"],
        has_rot=ex["has_rot"],
        eval_vertices=ex["eval_vertices"] if "eval_vertices" in ex else world,
    )


def apply(batch: dict[str, jax.Array], params: dict[str, jax.Array], spec: TRGAugment) -> dict[str, jax.Array]:
    """Host batch (module docstring) and `sample`'s parameters -> the model's training batch."""
    keys = ("image", "K", "R", "t", "vtx_world", "landmarks_2d", "has_3d_vtx", "has_rot", "eval_vertices")
    ex = {k: batch[k] for k in keys if k in batch}
    return jax.vmap(lambda e, p: _apply_one(e, p, spec))(ex, params)


def augment(batch: dict[str, jax.Array], key: jax.Array, spec: TRGAugment) -> dict[str, jax.Array]:
    """The training augmentation of a host batch: `apply(batch, sample(key, ...))`."""
    return apply(batch, sample(key, batch["has_3d_vtx"] > 0, spec), spec)

