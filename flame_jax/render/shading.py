"""Shading on top of the rasterizer: projection to screen space, attribute interpolation, Lambert lighting
and compositing over a background. Camera frame: OpenCV (x right, y down, z forward), docs/conventions.md.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from flame_jax.projection import project_pinhole
from flame_jax.render.rasterizer import Fragments, rasterize, tile_capacity


class Render(NamedTuple):
    """A shaded image and what produced it.

    image: (..., H, W, 3) float32 RGB in [0, 1], the mesh composited over the background.
    mask: (..., H, W) bool, pixels covered by the mesh.
    depth: (..., H, W) float32 camera depth z of the visible surface, 0 off the mesh.
    fragments: the rasterizer's output (triangle ids, barycentrics, overflow flag).
    """

    image: jax.Array
    mask: jax.Array
    depth: jax.Array
    fragments: Fragments


def project_to_screen(verts_cam: jax.Array, K: jax.Array) -> jax.Array:
    """Camera-frame points -> the rasterizer's screen space.

    Args:
      verts_cam: (..., N, 3) camera-frame points (any unit; z > 0 in front of the camera).
      K: (..., 3, 3) intrinsics [[fx, 0, cx], [0, fy, cy], [0, 0, 1]].

    Returns:
      (..., N, 3) (u, v, z): pixels with the top-left origin, and the camera depth z.
    """
    return jnp.concatenate([project_pinhole(verts_cam, K), verts_cam[..., 2:3]], axis=-1)


def vertex_normals(verts: jax.Array, faces: jax.Array) -> jax.Array:
    """Area-weighted unit vertex normals.

    They point outward for faces that run counter-clockwise seen from outside, in a right-handed frame
    (the OpenCV camera frame is one).

    Args:
      verts: (..., N, 3) vertices.
      faces: (F, 3) int vertex indices.

    Returns:
      (..., N, 3) unit normals (0 for vertices in no face of non-zero area).
    """
    tri = verts[..., faces, :]  # (..., F, 3, 3)
    # The cross product's length is twice the face area, which gives the area weighting.
    face_n = jnp.cross(tri[..., 1, :] - tri[..., 0, :], tri[..., 2, :] - tri[..., 0, :])
    summed = jnp.zeros_like(verts)
    for k in range(3):
        summed = summed.at[..., faces[:, k], :].add(face_n)
    return _unit(summed)


def interpolate(attributes: jax.Array, faces: jax.Array, fragments: Fragments) -> jax.Array:
    """Per-vertex attributes at every pixel, with the fragments' perspective-correct barycentrics.

    Args:
      attributes: (N, C) per-vertex values.
      faces: (F, 3) int vertex indices (those given to the rasterizer).
      fragments: one image's Fragments, (H, W) maps.

    Returns:
      (H, W, C) interpolated values, 0 on background pixels.
    """
    corner = attributes[faces[jnp.maximum(fragments.tri_id, 0)]]  # (H, W, 3, C)
    value = jnp.einsum("hwk,hwkc->hwc", fragments.bary, corner)
    return jnp.where((fragments.tri_id >= 0)[..., None], value, 0.0)


def lambert(
    normals: jax.Array,
    albedo: jax.Array,
    light_dir: jax.Array,
    ambient: jax.Array | float,
    diffuse: jax.Array | float = 1.0,
) -> jax.Array:
    """Lambert shading: albedo * (ambient + diffuse * max(0, n . l)), clipped to [0, 1].

    Args:
      normals: (..., 3) surface normals (normalised here).
      albedo: (..., 3) RGB reflectance in [0, 1].
      light_dir: (3,) direction from the surface towards the light, same frame as the normals.
      ambient: scalar or (3,) RGB ambient light.
      diffuse: scalar or (3,) RGB intensity of the directional light.

    Returns:
      (..., 3) RGB in [0, 1].
    """
    cos = jnp.maximum(jnp.sum(_unit(normals) * _unit(light_dir), axis=-1, keepdims=True), 0.0)
    return jnp.clip(albedo * (ambient + diffuse * cos), 0.0, 1.0)


def composite(color: jax.Array, mask: jax.Array, background: jax.Array) -> jax.Array:
    """(..., H, W, 3) color where mask (..., H, W) is set, background (..., H, W, 3) elsewhere."""
    return jnp.where(mask[..., None], color, background)


def render_lambert(
    verts_cam: jax.Array,
    faces: jax.Array,
    K: jax.Array,
    albedo: jax.Array,
    light_dir: jax.Array,
    ambient: jax.Array | float,
    background: jax.Array,
    *,
    diffuse: jax.Array | float = 1.0,
    tile: int = 4,
    capacity: int | None = None,
    cull_backfaces: bool = False,
    near: float = 1e-3,
) -> Render:
    """Renders one mesh with smooth (per-vertex normal) Lambert shading over a background.

    jit- and vmap-able with a static `capacity` (see `tile_capacity` on the projected vertices); the
    image size comes from the background's shape.

    Args:
      verts_cam: (N, 3) camera-frame vertices (OpenCV, metres), faces outward counter-clockwise.
      faces: (F, 3) int vertex indices.
      K: (3, 3) intrinsics.
      albedo: (N, 3) per-vertex RGB in [0, 1].
      light_dir: (3,) camera-frame direction towards the light.
      ambient, diffuse: light intensities, scalars or (3,) RGB (see `lambert`).
      background: (H, W, 3) RGB in [0, 1].
      tile, capacity, cull_backfaces, near: as in `flame_jax.render.rasterizer.rasterize`.

    Returns:
      Render with (H, W) maps.
    """
    height, width = background.shape[-3], background.shape[-2]
    screen = project_to_screen(verts_cam, K)
    if capacity is None:
        capacity = tile_capacity(
            screen, faces, height, width, tile=tile, cull_backfaces=cull_backfaces, near=near
        )
    frags = rasterize(
        screen, faces, height, width, tile=tile, capacity=capacity, cull_backfaces=cull_backfaces, near=near
    )
    mask = frags.tri_id >= 0
    normals = interpolate(vertex_normals(verts_cam, faces), faces, frags)
    color = lambert(normals, interpolate(albedo, faces, frags), light_dir, ambient, diffuse)
    return Render(composite(color, mask, background), mask, frags.depth, frags)


def _unit(v: jax.Array) -> jax.Array:
    norm = jnp.linalg.norm(v, axis=-1, keepdims=True)
    return v / jnp.where(norm > 0, norm, 1.0)
