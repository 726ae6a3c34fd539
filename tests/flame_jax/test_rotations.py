"""Rotation conventions against scipy and hand cases: axis-angle, both 6D layouts, Euler, distances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from flame_jax import rotations as rot

RS = Rotation.random(64, random_state=0).as_matrix()


def test_axis_angle_both_ways() -> None:
    rv = Rotation.from_matrix(RS).as_rotvec()
    np.testing.assert_allclose(rot.axis_angle_to_matrix(rv), RS, atol=1e-5)
    np.testing.assert_allclose(rot.matrix_to_axis_angle(RS.astype(np.float32)), rv, atol=2e-4)
    near_pi = np.array([0.0, np.pi - 1e-4, 0.0])
    np.testing.assert_allclose(rot.matrix_to_axis_angle(Rotation.from_rotvec(near_pi).as_matrix()), near_pi, atol=1e-3)


def test_six_d_layouts() -> None:
    trg = np.stack([RS[:, 0, 0], RS[:, 0, 1], RS[:, 1, 0], RS[:, 1, 1], RS[:, 2, 0], RS[:, 2, 1]], -1)
    dad = np.concatenate([RS[:, :, 0], RS[:, :, 1]], -1)
    np.testing.assert_allclose(rot.matrix_to_rot6d_trg(RS), trg, atol=1e-6)
    np.testing.assert_allclose(rot.matrix_to_rot6d_dad(RS), dad, atol=1e-6)
    # Gram-Schmidt of scaled / skewed columns gives back R.
    noisy_trg = trg * 2.5 + np.random.default_rng(0).normal(0, 0.01, trg.shape)
    R = np.asarray(rot.rot6d_to_matrix_trg(noisy_trg))
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-5)
    np.testing.assert_allclose(rot.rot6d_to_matrix_trg(trg), RS, atol=1e-5)
    np.testing.assert_allclose(rot.rot6d_to_matrix_dad(dad), RS, atol=1e-5)


def test_euler_yxz_is_scipy() -> None:
    angles = Rotation.from_matrix(RS).as_euler("yxz", degrees=True)
    np.testing.assert_allclose(rot.matrix_to_euler_yxz(RS), angles, atol=1e-3)
    np.testing.assert_allclose(rot.euler_yxz_to_matrix(angles), RS, atol=1e-5)
    yaw30 = np.asarray(rot.euler_yxz_to_matrix(np.array([30.0, 0, 0])))
    np.testing.assert_allclose(yaw30, Rotation.from_euler("y", 30, degrees=True).as_matrix(), atol=1e-6)


def test_dad_demo_euler() -> None:
    a = Rotation.from_matrix(np.swapaxes(RS, -1, -2)).as_euler("xyz", degrees=True)
    wrap = lambda x: (x + 180) % 360 - 180  # noqa: E731
    expected = np.stack([wrap(a[:, 2]), wrap(a[:, 0] - 180), wrap(a[:, 1])], -1)
    got = np.asarray(rot.matrix_to_euler_dad(RS))
    diff = (got - expected + 180) % 360 - 180
    np.testing.assert_allclose(diff, 0, atol=1e-3)


@pytest.mark.parametrize("angle", [0.1, 1.0, 3.0])
def test_distances(angle: float) -> None:
    R2 = Rotation.from_rotvec([0, 0, angle]).as_matrix()
    assert float(rot.geodesic_angle(R2, np.eye(3))) == pytest.approx(angle, abs=1e-3)
    # ||I - R||_F = 2 sqrt(2) sin(angle / 2) for a rotation by `angle`.
    assert float(rot.frobenius_pose_error(R2, np.eye(3))) == pytest.approx(2 * np.sqrt(2) * np.sin(angle / 2), abs=1e-5)
