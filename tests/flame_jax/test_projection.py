"""Projections and box geometry: pinhole, TRG Eq. 2 and its inverse, crop intrinsics, DAD's
orthographic reprojection, the OpenGL MV/P path and the cube normalisation."""

from __future__ import annotations

import numpy as np

from flame_jax import projection as P


def test_pinhole_hand_case() -> None:
    K = np.array([[500.0, 0, 320], [0, 400, 240], [0, 0, 1]])
    np.testing.assert_allclose(P.project_pinhole(np.array([[0.1, -0.2, 2.0]]), K), [[345.0, 200.0]], atol=1e-4)


def test_translation_correction_round_trip() -> None:
    rng = np.random.default_rng(0)
    t = np.stack([rng.uniform(-0.2, 0.2, 50), rng.uniform(-0.2, 0.2, 50), rng.uniform(0.3, 2, 50)], 1)
    l, tp = rng.uniform(0, 300, (2, 50))
    side = rng.uniform(50, 300, 50)
    box = np.stack([l, tp, l + side, tp + side], 1)
    f, hw = rng.uniform(300, 2000, 50), np.tile([480.0, 640.0], (50, 1))
    c = P.correction_from_translation(t, box, f, hw)
    np.testing.assert_allclose(P.translation_from_correction(c, box, f, hw), t, rtol=1e-4, atol=1e-5)
    # Eq. 2 by hand: tz = 0.2 s f / b.
    np.testing.assert_allclose(np.asarray(c)[:, 0], t[:, 2] * side / (0.2 * f), rtol=1e-5)


def test_crop_intrinsics_maps_pixels_into_the_crop() -> None:
    K = np.array([[600.0, 0, 330], [0, 600, 250], [0, 0, 1]])
    box = np.array([100.0, 80, 300, 280])
    Kc = np.asarray(P.crop_intrinsics(K, box, 192.0))
    X = np.array([[0.05, -0.02, 0.7], [-0.1, 0.04, 0.9]])
    full = np.asarray(P.project_pinhole(X, K))
    np.testing.assert_allclose(P.project_pinhole(X, Kc), (full - box[:2]) * 192 / 200, atol=1e-3)


def test_opengl_path_matches_pinhole() -> None:
    rng = np.random.default_rng(1)
    H = 480.0
    fx, fy, cx, cy = 700.0, 690.0, 310.0, 250.0
    proj = np.zeros((4, 4))
    proj[0, 0], proj[0, 2], proj[1, 1], proj[1, 2], proj[3, 2] = fx, -cx, fy, -(H - cy), -1.0
    proj[2, 2], proj[2, 3] = -1.0, -0.02
    mv = np.eye(4)
    mv[:3, 3] = [0.05, -0.02, -0.8]  # OpenGL camera: the head is at negative z
    v = rng.normal(0, 0.05, (20, 3))
    cam_gl = v + mv[:3, 3]
    cam_cv = cam_gl * [1, -1, -1]
    expected = np.stack([fx * cam_cv[:, 0] / cam_cv[:, 2] + cx, fy * cam_cv[:, 1] / cam_cv[:, 2] + cy], 1)
    np.testing.assert_allclose(P.opengl_to_pixels(v, mv, proj, H), expected, atol=1e-3)


def test_orthographic_dad() -> None:
    v = np.array([[0.1, -0.2, 0.3], [0.0, 0.0, 0.0]])
    out = np.asarray(P.project_orthographic_dad(v, np.eye(3), np.array([0.5]), np.array([0.1, -0.1, 9.0]), 256.0))
    np.testing.assert_allclose(out, ((v[:, :2] * 1.5 + [0.1, -0.1]) + 1) / 2 * 256, atol=1e-4)


def test_normalize_to_cube() -> None:
    rng = np.random.default_rng(2)
    v = rng.normal(0, 1, (100, 3)) * [1, 2, 0.5] + 5
    c = np.asarray(P.normalize_to_cube(v))
    shifted = v - v.min(0)
    shifted = shifted - shifted.max(0) / 2
    np.testing.assert_allclose(c, shifted / shifted.max(), atol=1e-5)
    assert np.isclose(c.max(), 1.0) and np.isclose(c[:, 1].min(), -1.0, atol=1e-5)
