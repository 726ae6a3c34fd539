"""Barycentric landmarks on FLAME meshes: the 68 iBUG points and vertex subsets."""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from flame_jax.model import FlameModel
from flame_jax.rotations import axis_angle_to_matrix

NUM_CONTOUR = 17
NUM_STATIC = 51
# The dynamic table has a row per yaw degree: rows 0..39 for yaw 0..-39 deg, 40..78 for +1..+39 deg.
NUM_YAW_BINS = 79


def barycentric_points(vertices: jax.Array, faces: jax.Array, face_idx: jax.Array, bary: jax.Array) -> jax.Array:
    """Points given by triangles and barycentric weights.

    Args:
      vertices: (..., V, 3) mesh vertices.
      faces: (F, 3) int triangles.
      face_idx: (..., L) int triangle per point (may carry batch dims of its own).
      bary: (..., L, 3) barycentric weights, rows summing to 1.

    Returns:
      (..., L, 3) sum_k bary[..., k] * vertices[faces[face_idx, k]].
    """
    tri = faces[face_idx]  # (..., L, 3)
    if tri.ndim == 2:
        corners = vertices[..., tri, :]
    else:
        # Per-sample triangles (dynamic contour): gather along the vertex axis.
        flat = tri.reshape(tri.shape[:-2] + (-1, 1))
        corners = jnp.take_along_axis(vertices, flat, axis=-2).reshape(tri.shape + (3,))
    return jnp.einsum("...lk,...lkc->...lc", bary.astype(vertices.dtype), corners)


def contour_yaw_bin(full_pose: jax.Array, neck_index: int = 1) -> jax.Array:
    """Row of the dynamic contour table for a pose (smplx's selection rule).

    Args:
      full_pose: (..., 15) FLAME axis-angle pose.
      neck_index: 1 composes root and neck rotations (FLAME_PyTorch, DECA); 0 uses
        the root alone (smplx's FLAME class).

    Returns:
      (...) int32 row in [0, 78]. Integer: no gradient flows through the choice.
    """
    rot = axis_angle_to_matrix(full_pose.reshape(full_pose.shape[:-1] + (5, 3)))
    rel = rot[..., 0, :, :]
    if neck_index == 1:
        rel = rel @ rot[..., 1, :, :]
    elif neck_index != 0:
        raise ValueError(f"neck_index must be 0 or 1, got {neck_index}")
    a = jnp.arctan2(-rel[..., 2, 0], jnp.sqrt(rel[..., 0, 0] ** 2 + rel[..., 1, 0] ** 2))
    d = jnp.round(jnp.minimum(-jnp.rad2deg(jax.lax.stop_gradient(a)), 39.0)).astype(jnp.int32)
    return jnp.where(d < 0, jnp.where(d < -39, 78, 39 - d), d)


def landmarks_68(
    model: FlameModel,
    vertices: jax.Array,
    full_pose: jax.Array | None = None,
    *,
    contour: Literal["dynamic", "frontal"] = "dynamic",
    order: Literal["ibug", "smplx"] = "ibug",
    neck_index: int = 1,
) -> jax.Array:
    """The 68 iBUG landmarks: 17 jaw-contour points and 51 static points.

    Args:
      model: a model with static (51) and dynamic (79 x 17) embeddings.
      vertices: (..., V, 3) vertices from `lbs`.
      full_pose: (..., 15) pose used to pick the contour row; required for "dynamic".
      contour: "dynamic" picks the row by yaw (`contour_yaw_bin`); "frontal" always
        uses row 0, as DAD-3DHeads does.
      order: "ibug" = [17 contour, 51 static] (FLAME_PyTorch, DECA, DAD-3DHeads);
        "smplx" = [51 static, 17 contour].
      neck_index: see `contour_yaw_bin`.

    Returns:
      (..., 68, 3) landmarks.
    """
    if model.lmk_faces is None or model.dyn_lmk_faces is None:
        raise ValueError("this FlameModel has no landmark embeddings (lmk_faces / dyn_lmk_faces)")
    static = barycentric_points(vertices, model.faces, model.lmk_faces, model.lmk_bary)
    if contour == "frontal":
        dyn = barycentric_points(vertices, model.faces, model.dyn_lmk_faces[0], model.dyn_lmk_bary[0])
    elif contour == "dynamic":
        if full_pose is None:
            raise ValueError('contour="dynamic" needs full_pose to choose the yaw bin')
        row = contour_yaw_bin(full_pose, neck_index)
        row = jnp.broadcast_to(row, vertices.shape[:-2])
        dyn = barycentric_points(vertices, model.faces, model.dyn_lmk_faces[row], model.dyn_lmk_bary[row])
    else:
        raise ValueError(f'contour must be "dynamic" or "frontal", got {contour!r}')
    parts = [dyn, static] if order == "ibug" else [static, dyn]
    return jnp.concatenate(parts, axis=-2)


def vertex_subset(model: FlameModel, vertices: jax.Array, name: str) -> jax.Array:
    """(..., V, 3) -> (..., N, 3): the vertices of the named subset (e.g. "face")."""
    if name not in model.subsets:
        raise KeyError(f"unknown vertex subset {name!r}; this model has {sorted(model.subsets)}")
    return vertices[..., model.subsets[name], :]
