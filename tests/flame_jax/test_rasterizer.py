"""Rasterizer and shading against a slow numpy reference (numpy_rasterizer.py beside this file) and hand
cases."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy_rasterizer import rasterize_reference

from flame_jax.render import (
    interpolate,
    lambert,
    project_to_screen,
    rasterize,
    render_lambert,
    tile_capacity,
    vertex_normals,
)

H, W = 32, 40


def _random_mesh(
    rng: np.random.Generator, num_faces: int, spread: float = 14.0
) -> tuple[np.ndarray, np.ndarray]:
    """Independent triangles scattered over (and a little beyond) a H x W image, depths 1 to 3."""
    centre = rng.uniform([-4, -4], [W + 4, H + 4], (num_faces, 1, 2))
    xy = centre + rng.normal(0, spread / 2, (num_faces, 3, 2))
    z = rng.uniform(1.0, 3.0, (num_faces, 3, 1))
    verts = np.concatenate([xy, z], -1).reshape(-1, 3).astype(np.float32)
    return verts, np.arange(3 * num_faces).reshape(num_faces, 3)


def _assert_matches_reference(verts, faces, frags, **kwargs) -> None:
    tri_id, bary, depth = rasterize_reference(verts, faces, H, W, **kwargs)
    np.testing.assert_array_equal(np.asarray(frags.tri_id), tri_id)
    np.testing.assert_allclose(np.asarray(frags.bary), bary, atol=2e-4)
    np.testing.assert_allclose(np.asarray(frags.depth), depth, rtol=1e-5)
    assert not bool(frags.overflow)


@pytest.mark.parametrize("cull_backfaces", [False, True])
def test_random_mesh_matches_reference(cull_backfaces: bool) -> None:
    verts, faces = _random_mesh(np.random.default_rng(0), 24)
    frags = rasterize(jnp.asarray(verts), jnp.asarray(faces), H, W, tile=8, cull_backfaces=cull_backfaces)
    assert 0.2 < float(np.mean(np.asarray(frags.tri_id) >= 0)) < 1.0  # a real mix of cover and background
    _assert_matches_reference(verts, faces, frags, cull_backfaces=cull_backfaces)


def test_hand_case_top_left_rule() -> None:
    # A square whose edges pass through pixel centres: x, y in [0.5, 4.5]. The top-left rule keeps the
    # left column and top row (centres 0.5) and drops the right column and bottom row (centres 4.5).
    for faces in ([[0, 1, 2], [0, 2, 3]], [[0, 2, 1], [0, 3, 2]]):  # both windings
        verts = np.array([[0.5, 0.5, 1], [4.5, 0.5, 1], [4.5, 4.5, 1], [0.5, 4.5, 1]], np.float32)
        frags = rasterize(jnp.asarray(verts), jnp.asarray(faces), H, W)
        expected = np.zeros((H, W), bool)
        expected[0:4, 0:4] = True
        np.testing.assert_array_equal(np.asarray(frags.tri_id) >= 0, expected)
        np.testing.assert_array_equal(rasterize_reference(verts, faces, H, W)[0] >= 0, expected)


def test_nearer_face_wins_regardless_of_order() -> None:
    near_tri = [[2, 2, 1.0], [30, 4, 1.0], [10, 28, 1.0]]
    far_tri = [[5, 1, 2.0], [38, 20, 2.0], [4, 30, 2.0]]
    # Interpenetrating pair: depth order flips along x inside the overlap.
    tilt_a = [[0, 0, 1.0], [40, 0, 3.0], [20, 32, 2.0]]
    tilt_b = [[0, 2, 3.0], [40, 2, 1.0], [20, 30, 2.0]]
    for pair in ((near_tri, far_tri), (tilt_a, tilt_b)):
        for order in ((0, 1), (1, 0)):
            verts = np.array([pair[order[0]], pair[order[1]]], np.float32).reshape(-1, 3)
            faces = np.arange(6).reshape(2, 3)
            frags = rasterize(jnp.asarray(verts), jnp.asarray(faces), H, W)
            _assert_matches_reference(verts, faces, frags)
    # Where both cover a pixel, the near triangle (index order[0] == 1 in the last run) is visible.
    verts = np.array([far_tri, near_tri], np.float32).reshape(-1, 3)
    frags = rasterize(jnp.asarray(verts), jnp.asarray(np.arange(6).reshape(2, 3)), H, W)
    assert int(frags.tri_id[10, 12]) == 1 and float(frags.depth[10, 12]) == pytest.approx(1.0)


def test_barycentrics_reproduce_pixel_centres_and_linear_attributes() -> None:
    rng = np.random.default_rng(1)
    K = np.array([[50.0, 0, W / 2], [0, 45.0, H / 2], [0, 0, 1]], np.float32)
    verts_cam = np.concatenate([rng.uniform(-0.5, 0.5, (9, 2)), rng.uniform(0.8, 2.5, (9, 1))], -1)
    verts_cam = jnp.asarray(verts_cam, jnp.float32)
    faces = jnp.arange(9).reshape(3, 3)
    frags = rasterize(project_to_screen(verts_cam, K), faces, H, W)
    mask = np.asarray(frags.tri_id) >= 0
    assert mask.sum() > 50

    # The camera-frame point the barycentrics pick lies on the ray through the pixel centre.
    point = np.asarray(interpolate(verts_cam, faces, frags))[mask]
    uv = point[:, :2] / point[:, 2:] * np.diag(K)[:2] + K[:2, 2]
    ys, xs = np.nonzero(mask)
    np.testing.assert_allclose(uv, np.stack([xs, ys], -1) + 0.5, atol=2e-3)
    np.testing.assert_allclose(point[:, 2], np.asarray(frags.depth)[mask], rtol=1e-5)

    # Any attribute linear in the camera-frame position interpolates exactly.
    A, c = rng.normal(size=(3, 2)), rng.normal(size=2)
    attr = jnp.asarray(np.asarray(verts_cam) @ A + c, jnp.float32)
    np.testing.assert_allclose(np.asarray(interpolate(attr, faces, frags))[mask], point @ A + c, atol=1e-4)
    assert np.all(np.asarray(interpolate(attr, faces, frags))[~mask] == 0)


def _jittered_grid(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A quad [2, 38] x [3, 31] cut into 9 x 7 cells, two triangles each, with interior vertices moved
    by half pixels (so edges and vertices fall exactly on pixel centres) or at random; depths vary."""
    nx, ny = 9, 7
    gx, gy = np.meshgrid(np.linspace(2, 38, nx + 1), np.linspace(3, 31, ny + 1))
    interior = (gx > 2) & (gx < 38) & (gy > 3) & (gy < 31)
    half = rng.integers(-3, 4, gx.shape + (2,)) * 0.5
    noise = rng.uniform(-1.5, 1.5, gx.shape + (2,))
    shift = np.where(rng.random(gx.shape)[..., None] < 0.5, half, noise) * interior[..., None]
    z = rng.uniform(1.0, 2.0, gx.shape)
    verts = np.stack([gx + shift[..., 0], gy + shift[..., 1], z], -1).reshape(-1, 3).astype(np.float32)
    idx = np.arange((nx + 1) * (ny + 1)).reshape(ny + 1, nx + 1)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]
    flip = rng.random(a.shape) < 0.5  # both diagonal directions
    t1 = np.where(flip[..., None], np.stack([a, b, c], -1), np.stack([a, b, d], -1))
    t2 = np.where(flip[..., None], np.stack([a, c, d], -1), np.stack([b, c, d], -1))
    return verts, np.concatenate([t1.reshape(-1, 3), t2.reshape(-1, 3)])


def test_mesh_is_watertight_and_never_drawn_twice() -> None:
    verts, faces = _jittered_grid(np.random.default_rng(2))
    # Each face on its own (a vmap over one-face meshes); the coverage counts must be exactly 1 inside.
    single = jax.vmap(lambda f: rasterize(jnp.asarray(verts), f[None], H, W, tile=4, capacity=64))(
        jnp.asarray(faces)
    )
    assert not np.any(np.asarray(single.overflow))
    count = np.sum(np.asarray(single.tri_id) >= 0, axis=0)
    expected = np.zeros((H, W), int)
    expected[3:31, 2:38] = 1
    np.testing.assert_array_equal(count, expected)
    # The whole mesh agrees with the reference, exact-edge pixels included.
    frags = rasterize(jnp.asarray(verts), jnp.asarray(faces), H, W, tile=8)
    _assert_matches_reference(verts, faces, frags)


def test_faces_larger_than_tiles_and_off_screen_vertices() -> None:
    verts = np.array(
        [
            [-300.0, -200.0, 2.0], [400.0, 10.0, 2.5], [5.0, 500.0, 1.5],  # covers the whole image
            [3.0, 2.0, 1.2], [36.0, 6.0, 1.4], [20.0, 30.0, 1.1],  # spans many 4 px tiles
            [1e6, 1e6, 1.0], [2e6, 1e6, 1.0], [1e6, 3e6, 1.0],  # entirely off screen
        ],
        np.float32,
    )
    faces = np.arange(9).reshape(3, 3)
    frags = rasterize(jnp.asarray(verts), jnp.asarray(faces), H, W, tile=4)
    assert np.all(np.asarray(frags.tri_id) >= 0)
    _assert_matches_reference(verts, faces, frags)
    # Too small a work list is reported rather than silently accepted.
    capacity = tile_capacity(verts, faces, H, W, tile=4)
    short = rasterize(jnp.asarray(verts), jnp.asarray(faces), H, W, tile=4, capacity=capacity // 2)
    assert bool(short.overflow)


def test_skipped_faces() -> None:
    verts = np.array(
        [
            [2, 2, 1.0], [30, 2, 1.0], [2, 30, 1.0],  # clockwise in the image: a back face
            [2, 2, 2.0], [2, 30, 2.0], [30, 2, 2.0],  # counter-clockwise: front face, behind the first
            [5, 5, 1.0], [35, 5, 0.0], [5, 25, 1.0],  # a vertex at the camera plane
            [5, 5, 1.0], [20, 20, 1.0], [35, 35, 1.0],  # zero area
            [5, 5, 1.0], [35, 5, np.nan], [5, 25, 1.0],  # not finite
        ],
        np.float32,
    )
    faces = np.arange(15).reshape(5, 3)
    for cull in (False, True):
        frags = rasterize(jnp.asarray(verts), jnp.asarray(faces), H, W, cull_backfaces=cull)
        ids = set(np.unique(np.asarray(frags.tri_id)).tolist())
        assert ids == ({-1, 1} if cull else {-1, 0})
        _assert_matches_reference(verts, faces, frags, cull_backfaces=cull)
    empty = rasterize(jnp.zeros((3, 3)), jnp.zeros((0, 3), jnp.int32), H, W)
    assert np.all(np.asarray(empty.tri_id) == -1)


def test_jit_and_vmap_match_single_calls() -> None:
    rng = np.random.default_rng(3)
    batch = [_random_mesh(rng, 16) for _ in range(3)]
    verts = np.stack([v for v, _ in batch])
    faces = batch[0][1]
    capacity = tile_capacity(verts, faces, H, W)
    run = jax.jit(jax.vmap(lambda v: rasterize(v, jnp.asarray(faces), H, W, capacity=capacity)))
    out = run(jnp.asarray(verts))
    for i in range(len(batch)):
        one = rasterize(jnp.asarray(verts[i]), jnp.asarray(faces), H, W)
        np.testing.assert_array_equal(np.asarray(out.tri_id[i]), np.asarray(one.tri_id))
        np.testing.assert_allclose(np.asarray(out.bary[i]), np.asarray(one.bary), atol=1e-6)
        np.testing.assert_allclose(np.asarray(out.depth[i]), np.asarray(one.depth), rtol=1e-6)
        assert not bool(out.overflow[i])
    with pytest.raises(ValueError, match="capacity"):
        jax.jit(lambda v: rasterize(v, jnp.asarray(faces), H, W))(jnp.asarray(verts[0]))


def _icosphere() -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=2)
    return np.asarray(sphere.vertices), np.asarray(sphere.faces)


def test_vertex_normals_of_a_sphere_point_outward() -> None:
    v, f = _icosphere()
    n = np.asarray(vertex_normals(jnp.asarray(v, jnp.float32), jnp.asarray(f)))
    want = np.zeros_like(v)
    for a, b, c in f:  # area-weighted sum of face normals, one face at a time
        face_normal = np.cross(v[b] - v[a], v[c] - v[a])
        for i in (a, b, c):
            want[i] += face_normal
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(n, want, atol=1e-5)
    assert np.all(np.sum(n * v, axis=1) / np.linalg.norm(v, axis=1) > 0.99)  # outward, near radial


def test_lambert_hand_values() -> None:
    n = jnp.array([[0.0, 0.0, -2.0], [0.0, 0.0, 1.0], [1.0, 0.0, -1.0]])
    albedo = jnp.full((3, 3), 0.5)
    out = np.asarray(lambert(n, albedo, jnp.array([0.0, 0.0, -1.0]), 0.2, 0.6))
    np.testing.assert_allclose(out[:, 0], [0.5 * 0.8, 0.5 * 0.2, 0.5 * (0.2 + 0.6 / np.sqrt(2))], rtol=1e-6)
    assert np.all(np.asarray(lambert(n, albedo * 2, jnp.array([0.0, 0.0, -1.0]), 0.5, 1.0)) <= 1.0)


def test_render_lambert_sphere() -> None:
    v, f = _icosphere()
    radius, dist = 0.1, 0.5
    verts_cam = jnp.asarray(v * radius + [0.0, 0.0, dist], jnp.float32)
    K = jnp.array([[100.0, 0, W / 2], [0, 100.0, H / 2], [0, 0, 1]])
    background = jnp.full((H, W, 3), 0.25)
    albedo = jnp.full((len(v), 3), 0.8)
    light = jnp.array([-1.0, 0.0, -1.0])  # towards the camera and the image's left
    out = render_lambert(verts_cam, jnp.asarray(f), K, albedo, light, 0.1, background)
    mask = np.asarray(out.mask)
    # Silhouette: a disc of radius f r / sqrt(d^2 - r^2) pixels (icosphere facets make it a bit smaller).
    r_px = 100 * radius / np.sqrt(dist**2 - radius**2)
    assert 0.8 * np.pi * r_px**2 < mask.sum() <= np.pi * r_px**2
    image = np.asarray(out.image)
    np.testing.assert_array_equal(image[~mask], 0.25)
    assert np.all((image >= 0) & (image <= 1))
    # Lit from the left: the left half of the disc is brighter than the right half.
    cols = np.arange(W)[None, :]
    assert image[mask & (cols < W / 2 - 2), 0].mean() > image[mask & (cols >= W / 2 + 2), 0].mean() + 0.2
    # Depth at the centre pixel is about dist - radius.
    assert float(out.depth[H // 2, W // 2]) == pytest.approx(dist - radius, rel=0.02)


def test_gradients_flow_through_barycentrics_and_depth() -> None:
    verts = jnp.array([[3.0, 2.0, 1.0], [36.0, 8.0, 2.0], [10.0, 29.0, 1.5]])
    faces = jnp.array([[0, 1, 2]])
    frags = rasterize(verts, faces, H, W, capacity=64)
    weight = jnp.asarray(np.asarray(frags.bary).min(axis=-1) > 0.1)  # pixels well inside the face

    def loss(v: jax.Array) -> jax.Array:
        f = rasterize(v, faces, H, W, capacity=64)
        return jnp.sum(weight * (f.depth + f.bary[..., 0] - 0.5 * f.bary[..., 2]))

    grad = np.asarray(jax.grad(loss)(verts))
    step = 1e-2
    for i, j in [(0, 0), (1, 1), (1, 2), (2, 2)]:
        e = np.zeros((3, 3), np.float32)
        e[i, j] = step
        numeric = (float(loss(verts + e)) - float(loss(verts - e))) / (2 * step)
        assert grad[i, j] == pytest.approx(numeric, rel=2e-2, abs=1e-2)
    assert np.abs(grad).max() > 0.1
