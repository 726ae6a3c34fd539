"""DAD-3DNet's head mesh: its 413-vector decoded through FLAME (official `head_mesh.py` semantics).

params_3dmm layout (../shared/specs/dad3dnet.md §2), for S = 300 shape and E = 100
expression components: shape [0:S], expression [S:S+E], jaw [S+E:S+E+3] (axis-angle),
rotation 6D [+3:+9] (DAD convention: two contiguous columns), translation [+9:+12]
(tx, ty, tz; tz unused), scale [+12].

FLAME runs with only the jaw posed (global, neck and eyes zero), the mesh is moved by
+0.05 m along z ("to the skull centre") and rotated about the origin by R. The rotated
frame is the orthographic crop frame (x right, y down). Pure functions: unlike the official
code, nothing here changes its inputs (it zeroes tz in place).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from flame_jax.lbs import lbs
from flame_jax.model import FlameModel
from flame_jax.projection import project_orthographic_dad
from flame_jax.rotations import rot6d_to_matrix_dad

MESH_OFFSET_Z = 0.05


def split_params(params: jax.Array, n_shape: int = 300, n_expr: int = 100) -> dict[str, jax.Array]:
    """(..., S+E+13) -> shape (..., S), expression (..., E), jaw (..., 3), rotation6d (..., 6),
    translation (..., 3), scale (..., 1)."""
    n = n_shape + n_expr
    if params.shape[-1] != n + 13:
        raise ValueError(
            f"params_3dmm must be (..., {n + 13}) = shape {n_shape} | expression {n_expr} | jaw 3 | "
            f"rotation 6 | translation 3 | scale 1; got {params.shape}"
        )
    return dict(
        shape=params[..., :n_shape],
        expression=params[..., n_shape:n],
        jaw=params[..., n : n + 3],
        rotation6d=params[..., n + 3 : n + 9],
        translation=params[..., n + 9 : n + 12],
        scale=params[..., n + 12 : n + 13],
    )


def rotation_matrix(params: jax.Array, n_shape: int = 300, n_expr: int = 100) -> jax.Array:
    """(..., S+E+13) -> (..., 3, 3) R from the DAD 6D rotation (model frame -> crop frame)."""
    return rot6d_to_matrix_dad(split_params(params, n_shape, n_expr)["rotation6d"])


def vertices_3d(flame_model: FlameModel, params: jax.Array, zero_rotation: bool = False) -> jax.Array:
    """FLAME vertices of a 3DMM vector, offset by +0.05 m in z and (unless `zero_rotation`) rotated.

    Args:
      flame_model: any FLAME-format model with n_shape/n_expr matching the vector.
      params: (..., S+E+13) params_3dmm.
      zero_rotation: skip R (the official 3D loss compares unrotated meshes).

    Returns:
      (..., V, 3) metres; model frame with zero_rotation, else the crop frame (no scale or
      translation applied).
    """
    p = split_params(params, flame_model.n_shape, flame_model.n_expr)
    betas = jnp.concatenate([p["shape"], p["expression"]], axis=-1)
    zeros3 = jnp.zeros_like(p["jaw"])
    full_pose = jnp.concatenate([zeros3, zeros3, p["jaw"], zeros3, zeros3], axis=-1)
    vertices, _ = lbs(flame_model, betas, full_pose)
    vertices = vertices + jnp.asarray([0.0, 0.0, MESH_OFFSET_Z], vertices.dtype)
    if zero_rotation:
        return vertices
    R = rot6d_to_matrix_dad(p["rotation6d"]).astype(vertices.dtype)
    return jnp.einsum("...ij,...vj->...vi", R, vertices)


def reprojected_vertices(flame_model: FlameModel, params: jax.Array, size: float = 256.0) -> jax.Array:
    """Orthographic projection of the mesh into a `size` crop.

    pixel = ((R v) * max(s + 1, 1e-8) + [tx, ty] + 1) / 2 * size, origin top-left, no y flip.

    Args:
      params: (..., S+E+13) params_3dmm.

    Returns:
      (..., V, 2) pixels.
    """
    p = split_params(params, flame_model.n_shape, flame_model.n_expr)
    unrotated = vertices_3d(flame_model, params, zero_rotation=True)
    R = rot6d_to_matrix_dad(p["rotation6d"]).astype(unrotated.dtype)
    return project_orthographic_dad(unrotated, R, p["scale"], p["translation"], size)
