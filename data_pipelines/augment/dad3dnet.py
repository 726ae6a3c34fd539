"""DAD-3DNet's training augmentation on the device (spec dad3dnet.md §9-10), the JAX twin of
`data_pipelines.pipelines.dad3dnet.DAD3DNetTransform.apply`: the head box enlarged by random
fractions per side, cut to int32 and clipped to the image, the crop resized (bilinear) so its longest
side is S and padded to S x S, centred; landmark and vertex targets, presence and the 68 heatmaps.

The resize is PIL's bilinear `Image.resize` (antialiased when it shrinks) as two weight matrices.

Input: the host batch of `DAD3DNetTransform.host_fields` (image (B, H, W, 3) uint8, landmarks_image
(B, 68, 2), vertices_image (B, V, 2), vertices, head_box, model_view_matrix, projection_matrix,
image_hw). Output: the batch of `DAD3DNetTransform` (docs/datasets.md) without `id`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

from data_pipelines.augment import image as im

# The heatmap targets (also used by the numpy reference): 1/4 of the crop, Gaussians cut at 5 px.
HEATMAP_STRIDE = 4
HEATMAP_RADIUS = 5


@dataclasses.dataclass(frozen=True)
class DAD3DNetAugment:
    """The static side: crop size, the enlargement range U[lo, hi) and the heatmap sigma."""

    size: int
    enlarge: tuple[float, float]
    sigma: float

    @classmethod
    def from_config(cls, data: ml_collections.ConfigDict) -> "DAD3DNetAugment":
        return cls(size=int(data.img_size), enlarge=tuple(data.enlarge), sigma=float(data.heatmap_sigma))


def sample(key: jax.Array, batch_size: int, spec: DAD3DNetAugment) -> dict[str, jax.Array]:
    """sides (B, 4): the enlargement (left, right, top, bottom) of each example, U[enlarge)."""
    return dict(sides=jax.random.uniform(key, (batch_size, 4), minval=spec.enlarge[0], maxval=spec.enlarge[1]))


def heatmaps(points: jax.Array, presence: jax.Array, size: int, sigma: float) -> jax.Array:
    """(68, 2) points in heatmap pixels, (68,) bool -> (size, size, 68) Gaussians of radius
    HEATMAP_RADIUS around int(xy), quantised down to 1/255 (`pipelines.dad3dnet.gaussian_heatmaps`)."""
    c = jnp.trunc(points)
    d = jnp.arange(size, dtype=jnp.float32)
    dx = d[:, None] - c[None, :, 0]  # (size, 68)
    dy = d[:, None] - c[None, :, 1]
    near = (jnp.abs(dy)[:, None] <= HEATMAP_RADIUS) & (jnp.abs(dx)[None] <= HEATMAP_RADIUS) & presence
    g = jnp.exp(-(dy[:, None] ** 2 + dx[None] ** 2) / (2.0 * sigma**2))
    return jnp.where(near, jnp.floor(g * 255.0) / 255.0, 0.0)


def _apply_one(ex: dict[str, jax.Array], sides: jax.Array, spec: DAD3DNetAugment) -> dict[str, jax.Array]:
    image = ex["image"]
    H, W = image.shape[:2]
    S = spec.size
    hb = ex["head_box"]
    w, h = hb[2] - hb[0], hb[3] - hb[1]
    l, r, t, b = sides[0], sides[1], sides[2], sides[3]
    box = jnp.stack([hb[0] - w * l, hb[1] - h * t, w * (1 + l + r), h * (1 + t + b)]).astype(jnp.int32)
    x0, y0 = jnp.clip(box[0], 0, W - 1), jnp.clip(box[1], 0, H - 1)
    x1, y1 = jnp.clip(box[0] + box[2], x0 + 1, W), jnp.clip(box[1] + box[3], y0 + 1, H)
    ch, cw = (y1 - y0).astype(jnp.float32), (x1 - x0).astype(jnp.float32)
    scale = S / jnp.maximum(ch, cw)
    nh, nw = jnp.maximum(jnp.round(ch * scale), 1.0), jnp.maximum(jnp.round(cw * scale), 1.0)
    top, left = jnp.floor((S - nh) / 2), jnp.floor((S - nw) / 2)

    canvas = im.resize_into(image, im.resample_weights(S, top, nh, y0, ch, H), im.resample_weights(S, left, nw, x0, cw, W))

    origin = jnp.stack([x0, y0]).astype(jnp.float32)
    lmk = ex["landmarks_image"] - origin
    vert2d = ex["vertices_image"] - origin
    presence = (lmk[:, 0] > 0) & (lmk[:, 0] < cw) & (lmk[:, 1] > 0) & (lmk[:, 1] < ch)
    pad = jnp.stack([left, top])
    lmk_s = lmk * scale + pad
    return dict(
        image=im.normalize(canvas),
        heatmap=heatmaps(lmk_s / HEATMAP_STRIDE, presence, S // HEATMAP_STRIDE, spec.sigma),
        landmarks=lmk_s / S,
        presence=presence.astype(jnp.float32),
        vertices_2d=vert2d * scale + pad,
        vertices=ex["vertices"],
        crop_box=jnp.stack([origin[0], origin[1], cw, ch]),
        crop_scale=jnp.stack([scale, scale]),
        crop_pad=pad,
        head_box=hb,
        model_view_matrix=ex["model_view_matrix"],
        projection_matrix=ex["projection_matrix"],
        image_hw=ex["image_hw"],
    )


def apply(batch: dict[str, jax.Array], params: dict[str, jax.Array], spec: DAD3DNetAugment) -> dict[str, jax.Array]:
    """Host batch (module docstring) and `sample`'s parameters -> the model's training batch."""
    keys = ("image", "landmarks_image", "vertices_image", "vertices", "head_box", "model_view_matrix",
            "projection_matrix", "image_hw")
    return jax.vmap(lambda e, s: _apply_one(e, s, spec))({k: batch[k] for k in keys}, params["sides"])


def augment(batch: dict[str, jax.Array], key: jax.Array, spec: DAD3DNetAugment) -> dict[str, jax.Array]:
    """The training augmentation of a host batch: `apply(batch, sample(key, ...))`."""
    return apply(batch, sample(key, batch["image"].shape[0], spec), spec)
