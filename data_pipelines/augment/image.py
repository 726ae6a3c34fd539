"""Image ops of the device augmentation, in JAX, matching `data_pipelines.image_ops` (numpy/PIL).

Pixel coordinates have their origin at the top-left corner of the top-left pixel (docs/conventions.md).
Values stay float in [0, 1] but are rounded to the uint8 grid after the warp and after the colour
jitter, where the numpy reference stores uint8.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates

from data_pipelines.image_ops import GREY_WEIGHTS, IMAGENET_MEAN, IMAGENET_STD


def affine3(A: jax.Array) -> jax.Array:
    """(..., 2, 3) affine map -> (..., 3, 3) homogeneous matrix."""
    last = jnp.broadcast_to(jnp.array([0.0, 0.0, 1.0], A.dtype), A.shape[:-2] + (1, 3))
    return jnp.concatenate([A, last], axis=-2)


def compose(A: jax.Array, B: jax.Array) -> jax.Array:
    """(2, 3) maps: first B, then A."""
    return (affine3(A) @ affine3(B))[:2]


def invert(A: jax.Array) -> jax.Array:
    """(2, 3) -> its inverse (2, 3)."""
    L = A[:, :2]
    Li = jnp.linalg.inv(L)
    return jnp.concatenate([Li, -(Li @ A[:, 2])[:, None]], axis=1)


def box_to_crop(box: jax.Array, size: int) -> jax.Array:
    """(4,) square box [l, t, r, b] -> (2, 3) map onto a size x size crop."""
    k = size / (box[2] - box[0])
    zero = jnp.zeros_like(k)
    return jnp.stack([jnp.stack([k, zero, -k * box[0]]), jnp.stack([zero, k, -k * box[1]])])


def rotation_about(centre: jax.Array, angle: jax.Array) -> jax.Array:
    """(2,) centre, () angle (rad, x toward y) -> (2, 3) rotation map about centre."""
    c, s = jnp.cos(angle), jnp.sin(angle)
    Rm = jnp.stack([jnp.stack([c, -s]), jnp.stack([s, c])])
    return jnp.concatenate([Rm, (centre - Rm @ centre)[:, None]], axis=1)


def apply_affine(A: jax.Array, points: jax.Array) -> jax.Array:
    """(N, 2) points through the (2, 3) map A."""
    return points @ A[:, :2].T + A[:, 2]


def sample_bilinear(image: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """(H, W, 3) image at continuous pixel-index coordinates x, y (N,) (pixel i's centre at i) ->
    (N, 3) float32, neighbours clamped at the edges."""
    sample = lambda ch: map_coordinates(ch, [y, x], order=1, mode="nearest")  # noqa: E731
    return jax.vmap(sample, in_axes=2, out_axes=1)(image.astype(jnp.float32))


def warp(image: jax.Array, source_from_output: jax.Array, size: tuple[int, int]) -> jax.Array:
    """(H, W, 3) uint8 image sampled at `source_from_output` (2, 3) of each output pixel centre ->
    (h, w, 3) float32 in [0, 1] on the uint8 grid. Bilinear with edge-clamped neighbours, black where
    the pixel centre falls outside the source, as PIL's affine transform."""
    H, W = image.shape[:2]
    ys, xs = jnp.meshgrid(jnp.arange(size[0]) + 0.5, jnp.arange(size[1]) + 0.5, indexing="ij")
    src = apply_affine(source_from_output, jnp.stack([xs.ravel(), ys.ravel()], 1))
    x, y = src[:, 0], src[:, 1]
    inside = (x >= 0) & (x < W) & (y >= 0) & (y < H)
    out = jnp.where(inside[:, None], sample_bilinear(image, x - 0.5, y - 0.5), 0.0)
    # PIL stores the bilinear value truncated to uint8 (the 1e-3 keeps exact integers from rounding down).
    return (jnp.floor(out + 1e-3) / 255.0).reshape(size[0], size[1], 3)


def resample_weights(size_out: int, start_out: jax.Array, n_out: jax.Array, start_in: jax.Array,
                     n_in: jax.Array, size_in: int) -> jax.Array:
    """(size_out, size_in) weights of PIL's bilinear `Image.resize` of input pixels
    [start_in, start_in + n_in) onto output pixels [start_out, start_out + n_out): a triangle filter
    widened by the reduction factor when shrinking (PIL's antialiasing), cut to the input range and
    normalised per output pixel; zero rows outside the output range."""
    scale = n_in / n_out
    width = jnp.maximum(scale, 1.0)
    j = jnp.arange(size_out) - start_out
    i = jnp.arange(size_in) - start_in
    w = jnp.maximum(0.0, 1.0 - jnp.abs((i[None] + 0.5 - (j[:, None] + 0.5) * scale) / width))
    w = jnp.where((i[None] >= 0) & (i[None] < n_in), w, 0.0)
    w = w / jnp.maximum(w.sum(1, keepdims=True), 1e-12)
    return jnp.where(((j >= 0) & (j < n_out))[:, None], w, 0.0)


def resize_into(image: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
    """(H, W, 3) uint8 through (h, H) row and (w, W) column weights (`resample_weights`) -> (h, w, 3)
    float32 in [0, 1]: columns first, rounded to uint8 in between and after, as PIL."""
    hi = jax.lax.Precision.HIGHEST  # an accelerator's default f32 matmul would round to ~3 digits
    x = jnp.einsum("hwc,xw->hxc", image.astype(jnp.float32), cols, precision=hi)
    x = jnp.floor(jnp.clip(x, 0, 255) + 0.5)
    x = jnp.einsum("yh,hxc->yxc", rows, x, precision=hi)
    return jnp.floor(jnp.clip(x, 0, 255) + 0.5) / 255.0


def rgb_to_hsv(x: jax.Array) -> jax.Array:
    """(..., 3) RGB in [0, 1] -> HSV in [0, 1] (matplotlib's formulas)."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = x.max(-1)
    delta = v - x.min(-1)
    s = jnp.where(v > 0, delta / jnp.where(v > 0, v, 1.0), 0.0)
    d = jnp.where(delta > 0, delta, 1.0)
    h = jnp.where(r == v, (g - b) / d, 0.0)
    h = jnp.where(g == v, 2.0 + (b - r) / d, h)
    h = jnp.where(b == v, 4.0 + (r - g) / d, h)
    h = jnp.where(delta > 0, h, 0.0)
    return jnp.stack([(h / 6.0) % 1.0, s, v], -1)


def hsv_to_rgb(hsv: jax.Array) -> jax.Array:
    """(..., 3) HSV in [0, 1] -> RGB (matplotlib's formulas)."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    i = jnp.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f))
    sector = i.astype(jnp.int32) % 6
    table = jnp.stack([
        jnp.stack([v, t, p], -1), jnp.stack([q, v, p], -1), jnp.stack([p, v, t], -1),
        jnp.stack([p, q, v], -1), jnp.stack([t, p, v], -1), jnp.stack([v, p, q], -1),
    ])
    rgb = jnp.take_along_axis(table, sector[None, ..., None], axis=0)[0]
    return jnp.where((s == 0)[..., None], v[..., None], rgb)


def _shift_hue(x: jax.Array, shift: jax.Array) -> jax.Array:
    hsv = rgb_to_hsv(x)
    return hsv_to_rgb(hsv.at[..., 0].set((hsv[..., 0] + shift) % 1.0))


def color_jitter(x: jax.Array, order: jax.Array, values: jax.Array) -> jax.Array:
    """(H, W, 3) in [0, 1] through brightness, contrast, saturation and hue in `order` (4,) int with
    `values` (4,) (three factors, one hue shift), clipped after each, rounded to the uint8 grid."""
    w = jnp.asarray(GREY_WEIGHTS)

    def blend(x: jax.Array, op: jax.Array) -> jax.Array:
        # Brightness, contrast and saturation are one blend toward black, the mean grey or each pixel's grey.
        grey = (x @ w)[..., None]
        ref = jnp.where(op == 0, 0.0, jnp.where(op == 1, jnp.mean(grey), grey))
        return jnp.clip((x - ref) * values[jnp.minimum(op, 2)] + ref, 0.0, 1.0)

    # The hue shift (the costly op) runs once, between the blends before and after it in `order`.
    hue_at = jnp.argmax(order == 3)
    for k in range(4):
        x = jnp.where(k < hue_at, blend(x, order[k]), x)
    x = jnp.clip(_shift_hue(x, values[3]), 0.0, 1.0)
    for k in range(4):
        x = jnp.where(k > hue_at, blend(x, order[k]), x)
    return jnp.floor(x * 255.0 + 0.5) / 255.0


def normalize(x: jax.Array) -> jax.Array:
    """(..., 3) in [0, 1] -> ImageNet-normalised float32."""
    return (x - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
