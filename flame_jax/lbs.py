"""FLAME linear blend skinning with smplx semantics, as a pure function.

The kinematic tree is FLAME's (root, neck, jaw, left eye, right eye; parents
[-1, 0, 1, 1, 1]); forward kinematics is written in closed form for it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from flame_jax.model import NUM_JOINTS, FlameModel
from flame_jax.rotations import axis_angle_to_matrix

POSE_DIM = 3 * NUM_JOINTS


def _check_inputs(model: FlameModel, betas: jax.Array, full_pose: jax.Array) -> None:
    K = model.shapedirs.shape[-1]
    if betas.shape[-1] != K:
        raise ValueError(
            f"betas has {betas.shape[-1]} components; this model expects {K} "
            f"({model.n_shape} shape + {model.n_expr} expression)"
        )
    if full_pose.shape[-1] != POSE_DIM:
        raise ValueError(
            f"full_pose must be (..., {POSE_DIM}) axis-angle [global, neck, jaw, eye_l, eye_r]; "
            f"got {full_pose.shape}"
        )


def forward_kinematics(rotations: jax.Array, joints: jax.Array) -> tuple[jax.Array, jax.Array]:
    """World transforms of FLAME's 5-joint tree in closed form.

    Args:
      rotations: (..., 5, 3, 3) local joint rotations.
      joints: (..., 5, 3) rest-pose joint locations.

    Returns:
      (R_world (..., 5, 3, 3), t_world (..., 5, 3)): posed joint frames; t_world are
      the posed joint locations.
    """
    R0 = rotations[..., 0, :, :]
    t0 = joints[..., 0, :]
    R1 = R0 @ rotations[..., 1, :, :]
    t1 = jnp.einsum("...ij,...j->...i", R0, joints[..., 1, :] - joints[..., 0, :]) + t0
    # Jaw and both eyes hang off the neck: one batched product for the three.
    Rc = R1[..., None, :, :] @ rotations[..., 2:, :, :]
    tc = jnp.einsum("...ij,...cj->...ci", R1, joints[..., 2:, :] - joints[..., 1:2, :]) + t1[..., None, :]
    R_world = jnp.concatenate([R0[..., None, :, :], R1[..., None, :, :], Rc], axis=-3)
    t_world = jnp.concatenate([t0[..., None, :], t1[..., None, :], tc], axis=-2)
    return R_world, t_world


def skin(weights: jax.Array, R: jax.Array, t: jax.Array, vertices: jax.Array) -> jax.Array:
    """Linear blend skinning: each vertex moved by its weighted sum of the joints' rigid motions.

    Args:
      weights: (V, J) skinning weights.
      R: (..., J, 3, 3) and t: (..., J, 3): bind-relative joint transforms, x -> R x + t.
      vertices: (..., V, 3) rest-pose vertices.

    Returns:
      (..., V, 3) sum_j weights[v, j] (R_j vertices_v + t_j).
    """
    # Written as J * 4 broadcast multiply-adds, which XLA fuses into one pass over the vertices. The
    # einsum form first writes the blended (..., V, 3, 3) rotations: about 40 % of a B=1024 call on a CPU.
    out = jnp.zeros_like(vertices)
    for j in range(weights.shape[-1]):
        moved = t[..., j, None, :]
        for c in range(3):
            moved = moved + vertices[..., c : c + 1] * R[..., j, None, :, c]
        out = out + weights[:, j, None] * moved
    return out


def lbs(
    model: FlameModel, betas: jax.Array, full_pose: jax.Array, translation: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """FLAME forward pass: blendshapes, pose correctives, forward kinematics, skinning.

    Args:
      model: the head model; its arrays may be float32 or float64.
      betas: (..., S+E) identity coefficients followed by expression coefficients.
      full_pose: (..., 15) axis-angle [global, neck, jaw, left eye, right eye].
      translation: optional (..., 3) added to vertices and joints.

    Returns:
      vertices (..., V, 3) and posed joints (..., 5, 3), in the model frame (metres).
    """
    _check_inputs(model, betas, full_pose)
    batch = jnp.broadcast_shapes(betas.shape[:-1], full_pose.shape[:-1])
    betas = jnp.broadcast_to(betas, batch + betas.shape[-1:])
    full_pose = jnp.broadcast_to(full_pose, batch + full_pose.shape[-1:])
    dtype = model.v_template.dtype

    # Shape and expression share one basis: a single contraction over S+E.
    v_shaped = model.v_template + jnp.einsum("...k,vck->...vc", betas.astype(dtype), model.shapedirs)
    # Joints from precomputed joint bases: never touches the V vertices.
    J = model.J_template + jnp.einsum("...k,jck->...jc", betas.astype(dtype), model.J_shapedirs)

    rot = axis_angle_to_matrix(full_pose.astype(dtype).reshape(batch + (NUM_JOINTS, 3)))
    pose_feature = (rot[..., 1:, :, :] - jnp.eye(3, dtype=dtype)).reshape(batch + (9 * (NUM_JOINTS - 1),))
    v_posed = v_shaped + jnp.einsum("...p,vcp->...vc", pose_feature, model.posedirs)

    R_world, t_world = forward_kinematics(rot, J)
    # Bind-relative transforms A_j = [R_j | t_j - R_j J_j].
    t_rel = t_world - jnp.einsum("...jab,...jb->...ja", R_world, J)
    vertices = skin(model.weights, R_world, t_rel, v_posed)
    joints = t_world
    if translation is not None:
        vertices = vertices + translation[..., None, :]
        joints = joints + translation[..., None, :]
    return vertices, joints
