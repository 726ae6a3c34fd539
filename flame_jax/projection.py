"""Camera projections and box geometry shared by TRG and DAD-3DNet, pure JAX.

Frames (docs/conventions.md): OpenCV cameras (x right, y down, z forward), metres,
pixel (u, v) with the origin at the top-left corner of the top-left pixel.
Boxes are [left, top, right, bottom] in pixels unless named otherwise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# TRG's Eq. 2 assumes a physical face box of 0.2 m.
TRG_BOX_METRES = 0.2


def project_pinhole(X: jax.Array, K: jax.Array) -> jax.Array:
    """Perspective projection, OpenCV convention.

    Args:
      X: (..., N, 3) camera-frame points, z > 0 in front of the camera.
      K: (..., 3, 3) intrinsics [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (column-vector form).

    Returns:
      (..., N, 2) pixels u = fx x / z + cx, v = fy y / z + cy.
    """
    uvw = jnp.einsum("...ij,...nj->...ni", K, X)
    return uvw[..., :2] / uvw[..., 2:3]


def project_orthographic_dad(
    v: jax.Array, R: jax.Array, scale: jax.Array, translation: jax.Array, size: float = 256.0
) -> jax.Array:
    """DAD-3DNet's reprojection into a square crop of `size` pixels.

    p = (R v) * max(scale + 1, 1e-8) + [tx, ty, 0]; pixel = (p_xy + 1) / 2 * size.
    tz is ignored, as in the official code (which zeroes it in place; this does not).

    Args:
      v: (..., N, 3) model vertices (FLAME frame, already offset by +0.05 m in z).
      R: (..., 3, 3) rotation from the DAD 6D convention.
      scale: (..., 1) scale parameter s (the network predicts s, the factor is s + 1).
      translation: (..., 2) or (..., 3) (tx, ty[, tz]); only tx, ty are used.
      size: output crop size in pixels.

    Returns:
      (..., N, 2) pixels in the crop, origin top-left, no y flip.
    """
    p = jnp.einsum("...ij,...nj->...ni", R, v)[..., :2]
    p = p * jnp.maximum(scale[..., None, :] + 1.0, 1e-8) + translation[..., None, :2]
    return (p + 1.0) / 2.0 * size


def opengl_to_pixels(
    v: jax.Array, model_view: jax.Array, projection: jax.Array, image_height: jax.Array | float
) -> jax.Array:
    """DAD-3DHeads ground truth: model vertices -> image pixels (top-left origin).

    world = MV [v; 1]; clip = P world; (x, y) = clip_xy / clip_w are pixels with the
    origin at the bottom-left (P holds the viewport), so the image row is H - y.

    Args:
      v: (..., N, 3) model-space vertices.
      model_view, projection: (..., 4, 4) OpenGL matrices acting on column vectors.
      image_height: (...) or scalar, the original image height H in pixels.

    Returns:
      (..., N, 2) pixels (x, H - y).
    """
    vh = jnp.concatenate([v, jnp.ones_like(v[..., :1])], axis=-1)
    clip = jnp.einsum("...ij,...jk,...nk->...ni", projection, model_view, vh)
    xy = clip[..., :2] / clip[..., 3:4]
    H = jnp.asarray(image_height, v.dtype)[..., None]
    return jnp.stack([xy[..., 0], H - xy[..., 1]], axis=-1)


def _box_centre_side(box: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    side = box[..., 2] - box[..., 0]
    return (box[..., 0] + box[..., 2]) / 2.0, (box[..., 1] + box[..., 3]) / 2.0, side


def translation_from_correction(
    correction: jax.Array, box: jax.Array, focal: jax.Array, image_hw: jax.Array
) -> jax.Array:
    """TRG Eq. 2 in the official code form: (s, t~x, t~y) -> metric translation.

    tz = 0.2 s f / b; tx = 0.2 s (cx - W/2) / b + 0.1 s t~x; ty likewise with H/2,
    where b = r - l is the box side and (cx, cy) its centre.

    Args:
      correction: (..., 3) (s, t~x, t~y).
      box: (..., 4) [l, t, r, b] full-image pixels.
      focal: (...) focal length f in pixels (K[0, 0]).
      image_hw: (..., 2) full image (H, W).

    Returns:
      (..., 3) translation in metres, OpenCV camera.
    """
    s, tx_, ty_ = correction[..., 0], correction[..., 1], correction[..., 2]
    cx, cy, b = _box_centre_side(box)
    H, W = image_hw[..., 0], image_hw[..., 1]
    tz = TRG_BOX_METRES * s * focal / b
    tx = TRG_BOX_METRES * s * (cx - W / 2.0) / b + 0.5 * TRG_BOX_METRES * s * tx_
    ty = TRG_BOX_METRES * s * (cy - H / 2.0) / b + 0.5 * TRG_BOX_METRES * s * ty_
    return jnp.stack([tx, ty, tz], axis=-1)


def correction_from_translation(
    t: jax.Array, box: jax.Array, focal: jax.Array, image_hw: jax.Array
) -> jax.Array:
    """Inverse of `translation_from_correction`: (..., 3) metres -> (..., 3) (s, t~x, t~y)."""
    cx, cy, b = _box_centre_side(box)
    H, W = image_hw[..., 0], image_hw[..., 1]
    s = t[..., 2] * b / (TRG_BOX_METRES * focal)
    tx_ = (t[..., 0] - TRG_BOX_METRES * s * (cx - W / 2.0) / b) / (0.5 * TRG_BOX_METRES * s)
    ty_ = (t[..., 1] - TRG_BOX_METRES * s * (cy - H / 2.0) / b) / (0.5 * TRG_BOX_METRES * s)
    return jnp.stack([s, tx_, ty_], axis=-1)


def crop_intrinsics(K: jax.Array, box: jax.Array, out_size: float) -> jax.Array:
    """Intrinsics of a square crop box resized to `out_size` pixels.

    Uses the box width b = r - l for both axes, as TRG does: f' = f out/b,
    c' = (c - [l, t]) out/b.

    Args:
      K: (..., 3, 3) full-image intrinsics (column-vector form).
      box: (..., 4) [l, t, r, b] pixels.
      out_size: side of the resized crop.

    Returns:
      (..., 3, 3) crop intrinsics.
    """
    k = out_size / (box[..., 2] - box[..., 0])
    z = jnp.zeros_like(k)
    shift = jnp.stack(
        [jnp.ones_like(k), z, -box[..., 0], z, jnp.ones_like(k), -box[..., 1], z, z, jnp.ones_like(k)], -1
    ).reshape(k.shape + (3, 3))
    scale = jnp.stack([k, z, z, z, k, z, z, z, jnp.ones_like(k)], -1).reshape(k.shape + (3, 3))
    return scale @ shift @ K


def normalize_to_cube(v: jax.Array) -> jax.Array:
    """DAD-3DNet's per-sample isotropic normalisation, (..., N, 3) -> (..., N, 3).

    Shift so each axis starts at 0, centre by half the per-axis maximum, then divide
    by the largest coordinate over axes and vertices: the longest axis spans [-1, 1].
    """
    v = v - jnp.min(v, axis=-2, keepdims=True)
    v = v - 0.5 * jnp.max(v, axis=-2, keepdims=True)
    return v / jnp.max(v, axis=(-2, -1), keepdims=True)
