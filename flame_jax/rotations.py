"""Rotation conversions and distances, pure JAX with arbitrary leading batch dims.

Conventions (see docs/conventions.md): rotation matrices act on column vectors,
v' = R @ v. Both 6D conventions build R from Gram-Schmidt columns R = [b1 b2 b3].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Matches the clamp of torch.nn.functional.normalize used by both official codes.
_NORM_EPS = 1e-12


def skew(v: jax.Array) -> jax.Array:
    """(..., 3) -> (..., 3, 3) cross-product matrix, skew(a) @ b = a x b."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    o = jnp.zeros_like(x)
    return jnp.stack([o, -z, y, z, o, -x, -y, x, o], axis=-1).reshape(v.shape[:-1] + (3, 3))


def axis_angle_to_matrix(r: jax.Array) -> jax.Array:
    """Rodrigues' formula with smplx semantics: (..., 3) axis-angle -> (..., 3, 3).

    The angle is ||r + 1e-8|| (epsilon added to each component), so r = 0 gives
    the identity to float precision with finite gradients, as smplx's `batch_rodrigues`.
    """
    angle = jnp.linalg.norm(r + 1e-8, axis=-1, keepdims=True)
    k = skew(r / angle)
    s = jnp.sin(angle)[..., None]
    c = jnp.cos(angle)[..., None]
    return jnp.eye(3, dtype=r.dtype) + s * k + (1.0 - c) * (k @ k)


def matrix_to_axis_angle(R: jax.Array) -> jax.Array:
    """Log map (..., 3, 3) -> (..., 3) axis-angle with |angle| <= pi.

    Uses the skew part away from pi (stable and differentiable near the identity,
    where a first-order series replaces angle / sin(angle)), and the symmetric
    part near pi, where the skew part vanishes.
    """
    cos = jnp.clip((jnp.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    angle = jnp.arccos(cos)
    w = jnp.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    small = angle < 1e-4
    safe_angle = jnp.where(small, 1.0, angle)
    factor = jnp.where(small, 0.5 + angle**2 / 12.0, safe_angle / (2.0 * jnp.sin(safe_angle)))
    near_pi = angle > jnp.pi - 1e-3
    factor = jnp.where(near_pi, 0.0, factor)
    from_skew = factor[..., None] * w
    # Near pi: R + I = 2 k k^T (1 - cos) ~ 2 k k^T; take the column with the largest diagonal.
    B = (R + jnp.eye(3, dtype=R.dtype)) / 2.0
    diag = jnp.diagonal(B, axis1=-2, axis2=-1)
    i = jnp.argmax(diag, axis=-1)
    col = jnp.take_along_axis(B, jnp.broadcast_to(i[..., None, None], B.shape[:-1] + (1,)), axis=-1)[..., 0]
    k = col / jnp.sqrt(jnp.maximum(jnp.take_along_axis(diag, i[..., None], -1), 1e-12))
    # Fix the sign of k from the (small) skew part so that nearby angles agree.
    sign = jnp.where(jnp.sum(k * w, axis=-1, keepdims=True) < 0, -1.0, 1.0)
    from_sym = sign * k * angle[..., None]
    return jnp.where(near_pi[..., None], from_sym, from_skew)


def _normalize(v: jax.Array) -> jax.Array:
    return v / jnp.maximum(jnp.linalg.norm(v, axis=-1, keepdims=True), _NORM_EPS)


def _gram_schmidt(a1: jax.Array, a2: jax.Array) -> jax.Array:
    """Two (..., 3) vectors -> (..., 3, 3) rotation with columns [b1, b2, b1 x b2]."""
    b1 = _normalize(a1)
    b2 = _normalize(a2 - jnp.sum(b1 * a2, axis=-1, keepdims=True) * b1)
    b3 = jnp.cross(b1, b2, axis=-1)
    return jnp.stack([b1, b2, b3], axis=-1)


def rot6d_to_matrix_trg(p: jax.Array) -> jax.Array:
    """TRG 6D: (..., 6) = [R00, R01, R10, R11, R20, R21] (interleaved columns) -> (..., 3, 3)."""
    return _gram_schmidt(p[..., 0::2], p[..., 1::2])


def matrix_to_rot6d_trg(R: jax.Array) -> jax.Array:
    """(..., 3, 3) -> (..., 6) TRG interleaved form: the first two columns, row by row."""
    return R[..., :, :2].reshape(R.shape[:-2] + (6,))


def rot6d_to_matrix_dad(v: jax.Array) -> jax.Array:
    """DAD-3DNet 6D: (..., 6) with a1 = v[0:3], a2 = v[3:6] (contiguous) -> (..., 3, 3).

    The official code builds b3 = normalize(b1 x a2), b2 = b3 x b1; that is the same
    matrix as Gram-Schmidt. The cross product is always over the last axis (the
    official torch.cross without `dim` crosses over the batch axis when B = 3).
    """
    return _gram_schmidt(v[..., 0:3], v[..., 3:6])


def matrix_to_rot6d_dad(R: jax.Array) -> jax.Array:
    """(..., 3, 3) -> (..., 6) DAD form: first column, then second column."""
    return jnp.concatenate([R[..., :, 0], R[..., :, 1]], axis=-1)


def _rx(a: jax.Array) -> jax.Array:
    c, s, o, i = jnp.cos(a), jnp.sin(a), jnp.zeros_like(a), jnp.ones_like(a)
    return jnp.stack([i, o, o, o, c, -s, o, s, c], -1).reshape(a.shape + (3, 3))


def _ry(a: jax.Array) -> jax.Array:
    c, s, o, i = jnp.cos(a), jnp.sin(a), jnp.zeros_like(a), jnp.ones_like(a)
    return jnp.stack([c, o, s, o, i, o, -s, o, c], -1).reshape(a.shape + (3, 3))


def _rz(a: jax.Array) -> jax.Array:
    c, s, o, i = jnp.cos(a), jnp.sin(a), jnp.zeros_like(a), jnp.ones_like(a)
    return jnp.stack([c, -s, o, s, c, o, o, o, i], -1).reshape(a.shape + (3, 3))


def euler_yxz_to_matrix(angles_deg: jax.Array) -> jax.Array:
    """TRG Euler (..., 3) = (yaw, pitch, roll) in degrees -> R = Rz(roll) Rx(pitch) Ry(yaw).

    This is scipy's extrinsic 'yxz' sequence, as the official TRG metrics use it.
    """
    a = jnp.deg2rad(angles_deg)
    return _rz(a[..., 2]) @ _rx(a[..., 1]) @ _ry(a[..., 0])


def matrix_to_euler_yxz(R: jax.Array) -> jax.Array:
    """(..., 3, 3) -> (..., 3) (yaw, pitch, roll) in degrees, scipy extrinsic 'yxz'.

    pitch is in [-90, 90]; at the gimbal lock (|pitch| = 90) yaw is set to 0 as scipy does.
    """
    pitch = jnp.arcsin(jnp.clip(R[..., 2, 1], -1.0, 1.0))
    lock = jnp.abs(R[..., 2, 1]) > 1.0 - 1e-7
    yaw = jnp.where(lock, 0.0, jnp.arctan2(-R[..., 2, 0], R[..., 2, 2]))
    # At the lock only yaw + roll (or yaw - roll) is defined: put it all in roll.
    roll_lock = jnp.arctan2(R[..., 1, 0], R[..., 0, 0])
    roll = jnp.where(lock, roll_lock, jnp.arctan2(-R[..., 0, 1], R[..., 1, 1]))
    return jnp.rad2deg(jnp.stack([yaw, pitch, roll], axis=-1))


def _wrap_deg(a: jax.Array) -> jax.Array:
    return (a + 180.0) % 360.0 - 180.0


def matrix_to_euler_dad(R: jax.Array) -> jax.Array:
    """DAD-3DNet demo Euler: (..., 3, 3) -> (..., 3) (roll, pitch, yaw) degrees in [-180, 180).

    The demo takes a = scipy from_matrix(R^T).as_euler('xyz') (extrinsic x, y, z, so
    R^T = Rz(a2) Ry(a1) Rx(a0)) and reports roll = a2, pitch = a0 - 180, yaw = a1.
    Used only for display; no metric uses it.
    """
    M = jnp.swapaxes(R, -1, -2)
    a1 = jnp.arcsin(jnp.clip(-M[..., 2, 0], -1.0, 1.0))
    lock = jnp.abs(M[..., 2, 0]) > 1.0 - 1e-7
    a0 = jnp.where(lock, 0.0, jnp.arctan2(M[..., 2, 1], M[..., 2, 2]))
    a2_lock = jnp.arctan2(-M[..., 0, 1], M[..., 1, 1])
    a2 = jnp.where(lock, a2_lock, jnp.arctan2(M[..., 1, 0], M[..., 0, 0]))
    a0, a1, a2 = jnp.rad2deg(a0), jnp.rad2deg(a1), jnp.rad2deg(a2)
    return jnp.stack([_wrap_deg(a2), _wrap_deg(a0 - 180.0), _wrap_deg(a1)], axis=-1)


def geodesic_angle(R1: jax.Array, R2: jax.Array) -> jax.Array:
    """Angle of R1 R2^T in radians, (..., 3, 3) x2 -> (...).

    The cosine is clipped to [-1 + 1e-7, 1 - 1e-7] as in the official TRG metric,
    which also keeps the arccos gradient finite.
    """
    cos = (jnp.trace(R1 @ jnp.swapaxes(R2, -1, -2), axis1=-2, axis2=-1) - 1.0) / 2.0
    return jnp.arccos(jnp.clip(cos, -1.0 + 1e-7, 1.0 - 1e-7))


def frobenius_pose_error(R1: jax.Array, R2: jax.Array) -> jax.Array:
    """DAD-3DHeads pose error ||I - R1 R2^T||_F, (..., 3, 3) x2 -> (...)."""
    D = jnp.eye(3, dtype=R1.dtype) - R1 @ jnp.swapaxes(R2, -1, -2)
    return jnp.sqrt(jnp.sum(D * D, axis=(-2, -1)))
