"""flame_jax.lbs against an independent numpy LBS written with explicit loops (smplx semantics)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flame_jax import build_flame_model, lbs
from flame_jax.model import FLAME_PARENTS
from tests.flame_jax.flame_fixtures import random_flame_arrays


def rodrigues(r: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(r + 1e-8)
    k = r / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def numpy_lbs(a: dict, n_shape: int, n_expr: int, betas: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    V = len(a["v_template"])
    basis = np.concatenate([a["shapedirs"][..., :n_shape], a["shapedirs"][..., 300 : 300 + n_expr]], -1)
    v_shaped = a["v_template"].copy()
    for k in range(n_shape + n_expr):
        v_shaped += betas[k] * basis[..., k]
    J = a["J_regressor"] @ v_shaped
    rots = [rodrigues(pose[3 * j : 3 * j + 3]) for j in range(5)]
    feature = np.concatenate([(rots[j] - np.eye(3)).reshape(-1) for j in range(1, 5)])
    v_posed = v_shaped + np.einsum("vcp,p->vc", a["posedirs"], feature)
    world = [None] * 5
    for j in range(5):
        local = np.eye(4)
        local[:3, :3] = rots[j]
        local[:3, 3] = J[j] - (J[FLAME_PARENTS[j]] if j > 0 else 0)
        world[j] = local if j == 0 else world[FLAME_PARENTS[j]] @ local
    out = np.zeros((V, 3))
    for v in range(V):
        T = np.zeros((4, 4))
        for j in range(5):
            rel = world[j].copy()
            rel[:3, 3] -= world[j][:3, :3] @ J[j]
            T += a["weights"][v, j] * rel
        out[v] = T[:3, :3] @ v_posed[v] + T[:3, 3]
    joints = np.stack([world[j][:3, 3] for j in range(5)])
    return out, joints


def _model(a: dict, n_shape: int = 6, n_expr: int = 4, dtype=jnp.float64):
    return build_flame_model(
        v_template=a["v_template"], shapedirs=a["shapedirs"], posedirs=a["posedirs"], J_regressor=a["J_regressor"],
        weights=a["weights"], faces=a["f"], lmk_faces=None, lmk_bary=None, dyn_lmk_faces=None, dyn_lmk_bary=None,
        n_shape=n_shape, n_expr=n_expr, expr_offset=300, dtype=dtype,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_numpy_reference(seed: int) -> None:
    jax.config.update("jax_enable_x64", True)
    try:
        a = random_flame_arrays(seed)
        rng = np.random.default_rng(seed + 10)
        betas, pose = rng.normal(0, 1, 10), rng.normal(0, 0.4, 15)
        v, j = lbs(_model(a), jnp.asarray(betas), jnp.asarray(pose))
        v_ref, j_ref = numpy_lbs(a, 6, 4, betas, pose)
        np.testing.assert_allclose(v, v_ref, atol=1e-5)
        np.testing.assert_allclose(j, j_ref, atol=1e-5)
    finally:
        jax.config.update("jax_enable_x64", False)


def test_jit_vmap_and_batch_dims() -> None:
    a = random_flame_arrays(3)
    model = _model(a, dtype=jnp.float32)
    rng = np.random.default_rng(0)
    betas = jnp.asarray(rng.normal(0, 1, (2, 3, 10)), jnp.float32)
    pose = jnp.asarray(rng.normal(0, 0.3, (2, 3, 15)), jnp.float32)
    v, _ = lbs(model, betas, pose)
    assert v.shape == (2, 3, 40, 3)
    v_jit, _ = jax.jit(lbs)(model, betas, pose)
    np.testing.assert_allclose(v_jit, v, atol=1e-6)
    v_map, _ = jax.vmap(jax.vmap(lambda b, p: lbs(model, b, p)))(betas, pose)
    np.testing.assert_allclose(v_map, v, atol=1e-6)
    loop = np.stack([np.stack([np.asarray(lbs(model, betas[i, k], pose[i, k])[0]) for k in range(3)]) for i in range(2)])
    np.testing.assert_allclose(loop, v, atol=1e-6)


def test_zero_pose_reproduces_template_and_gradients_are_finite() -> None:
    a = random_flame_arrays(4)
    model = _model(a, dtype=jnp.float32)
    v, _ = lbs(model, jnp.zeros(10), jnp.zeros(15))
    np.testing.assert_allclose(v, a["v_template"], atol=1e-6)
    grad = jax.grad(lambda p: jnp.sum(lbs(model, jnp.zeros(10), p)[0] ** 2))(jnp.zeros(15))
    assert np.all(np.isfinite(grad))
