"""The DAD-3DNet head mesh on a small random FLAME-format model (300 shape / 100 expression)."""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from flame_jax import lbs
from jaxhead.models.dad3dnet_mesh import (
    MESH_OFFSET_Z,
    reprojected_vertices,
    rotation_matrix,
    split_params,
    vertices_3d,
)

from dad3dnet_test_utils import random_flame  # tests/jaxhead

V = 24


@pytest.fixture(scope="module")
def flame():
    return random_flame(V, seed=0)


def params_3dmm(rng: np.random.Generator, batch=(2,), R=None, jaw_scale=0.2) -> np.ndarray:
    p = rng.normal(size=batch + (413,)).astype(np.float32)
    p[..., 400:403] *= jaw_scale
    if R is not None:
        p[..., 403:406], p[..., 406:409] = R[:, 0], R[:, 1]
    return p


def test_split_layout():
    p = split_params(jnp.arange(413.0))
    assert float(p["shape"][0]) == 0 and float(p["shape"][-1]) == 299
    assert float(p["expression"][0]) == 300 and float(p["expression"][-1]) == 399
    np.testing.assert_array_equal(p["jaw"], [400, 401, 402])
    np.testing.assert_array_equal(p["rotation6d"], np.arange(403, 409))
    np.testing.assert_array_equal(p["translation"], [409, 410, 411])
    np.testing.assert_array_equal(p["scale"], [412])
    with pytest.raises(ValueError, match="413"):
        split_params(jnp.zeros(412))


def test_unposed_mesh_is_blendshapes_plus_offset(flame):
    """With the jaw at rest LBS is the identity: v = T + S beta + (0, 0, 0.05)."""
    p = params_3dmm(np.random.default_rng(1), jaw_scale=0.0)
    got = np.asarray(vertices_3d(flame, jnp.asarray(p), zero_rotation=True))
    want = np.asarray(flame.v_template) + np.einsum("bk,vck->bvc", p[:, :400], np.asarray(flame.shapedirs))
    want[..., 2] += 0.05
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_jaw_is_the_only_pose(flame):
    p = params_3dmm(np.random.default_rng(2))
    pose = np.zeros((2, 15), np.float32)
    pose[:, 6:9] = p[:, 400:403]
    ref, _ = lbs(flame, jnp.asarray(p[:, :400]), jnp.asarray(pose))
    got = vertices_3d(flame, jnp.asarray(p), zero_rotation=True)
    np.testing.assert_allclose(got, np.asarray(ref) + [0, 0, MESH_OFFSET_Z], atol=1e-6)
    # The jaw does move the mesh.
    p0 = p.copy()
    p0[:, 400:403] = 0
    assert np.abs(np.asarray(vertices_3d(flame, jnp.asarray(p0), True)) - np.asarray(got)).max() > 1e-4


def test_rotation_about_the_origin_after_offset(flame):
    R = Rotation.from_euler("xyz", [20, -35, 50], degrees=True).as_matrix()
    p = params_3dmm(np.random.default_rng(3), R=R)
    np.testing.assert_allclose(rotation_matrix(jnp.asarray(p)), np.broadcast_to(R, (2, 3, 3)), atol=1e-6)
    unrot = np.asarray(vertices_3d(flame, jnp.asarray(p), zero_rotation=True))
    rot = np.asarray(vertices_3d(flame, jnp.asarray(p)))
    np.testing.assert_allclose(rot, unrot @ R.T, atol=1e-6)


def test_orthographic_projection_hand_case(flame):
    """Frontal R = diag(1, -1, -1), s = 0.5 (factor 1.5), t = (0.1, -0.2, tz ignored)."""
    p = params_3dmm(np.random.default_rng(4), batch=(1,), R=np.diag([1.0, -1.0, -1.0]))
    p[0, 409:413] = [0.1, -0.2, 7.0, 0.5]
    v = np.asarray(vertices_3d(flame, jnp.asarray(p), zero_rotation=True))[0]
    u = ((v[:, 0] * 1.5 + 0.1) + 1) / 2 * 256
    w = ((-v[:, 1] * 1.5 - 0.2) + 1) / 2 * 256
    got = np.asarray(reprojected_vertices(flame, jnp.asarray(p)))[0]
    np.testing.assert_allclose(got, np.stack([u, w], -1), atol=1e-4)
    # A scale below -1 is clamped to a 1e-8 factor: every vertex lands on the translation.
    p[0, 412] = -3.0
    got = np.asarray(reprojected_vertices(flame, jnp.asarray(p), size=100.0))[0]
    np.testing.assert_allclose(got, np.broadcast_to([(1.1) / 2 * 100, (0.8) / 2 * 100], got.shape), atol=1e-4)


def test_inputs_are_not_mutated(flame):
    p = params_3dmm(np.random.default_rng(5))
    keep = p.copy()
    template = np.asarray(flame.v_template).copy()
    reprojected_vertices(flame, p)
    vertices_3d(flame, p)
    np.testing.assert_array_equal(p, keep)  # the official code zeroes tz in place
    np.testing.assert_array_equal(np.asarray(flame.v_template), template)


def test_batch_dims_jit_and_grad(flame):
    p = jnp.asarray(params_3dmm(np.random.default_rng(6), batch=(2, 3)))
    out = jax.jit(reprojected_vertices)(flame, p)
    assert out.shape == (2, 3, V, 2)
    np.testing.assert_allclose(out[1, 2], jax.jit(reprojected_vertices)(flame, p[1, 2]), atol=1e-4)
    g = jax.jit(jax.grad(lambda q: jnp.sum(reprojected_vertices(flame, q) ** 2)))(p)
    assert np.all(np.isfinite(g)) and np.abs(g[..., 403:413]).max() > 0
