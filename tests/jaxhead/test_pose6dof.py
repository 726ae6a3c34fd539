"""6DoF metrics: hand cases and independent re-derivations (scipy Rotation algebra, loops)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jaxhead.metrics.pose6dof import (
    add_mm,
    aggregate,
    euler_errors,
    euler_errors_wrapped,
    euler_yxz,
    geodesic_error_deg,
    per_sample_metrics,
    reconstruction_error_mm,
    translation_errors_mm,
)


def _R(seq: str, angles, degrees=True) -> np.ndarray:
    return Rotation.from_euler(seq, angles, degrees=degrees).as_matrix()


def test_pure_yaw_hand_case():
    R_gt = np.eye(3)[None]
    R_pred = _R("y", [10.0])[None]
    np.testing.assert_allclose(euler_errors(R_pred, R_gt), [[10.0, 0.0, 0.0]], atol=1e-9)
    np.testing.assert_allclose(geodesic_error_deg(R_pred, R_gt), [10.0], atol=1e-5)


def test_euler_convention_is_rz_rx_ry():
    yaw, pitch, roll = 20.0, -15.0, 7.0
    R = _R("z", roll) @ _R("x", pitch) @ _R("y", yaw)
    np.testing.assert_allclose(euler_yxz(R[None]), [[yaw, pitch, roll]], atol=1e-9)


def test_no_wrapping_versus_wrapped():
    R_gt = _R("y", [179.0])[None]
    R_pred = _R("y", [-179.0])[None]
    # scipy's first angle spans (-180, 180] and the middle one [-90, 90]: a pure yaw stays pure.
    np.testing.assert_allclose(euler_errors(R_pred, R_gt), [[358.0, 0.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(euler_errors_wrapped(R_pred, R_gt), [[2.0, 0.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(geodesic_error_deg(R_pred, R_gt), [2.0], atol=1e-4)


def test_geodesic_against_rotvec_magnitude():
    rng = np.random.default_rng(0)
    Rp = Rotation.random(50, random_state=rng)
    Rg = Rotation.random(50, random_state=rng)
    expect = np.degrees((Rp * Rg.inv()).magnitude())
    np.testing.assert_allclose(geodesic_error_deg(Rp.as_matrix(), Rg.as_matrix()), expect, atol=2e-4)


def test_euler_errors_against_scipy_loop():
    rng = np.random.default_rng(1)
    Rp = Rotation.random(20, random_state=rng).as_matrix()
    Rg = Rotation.random(20, random_state=rng).as_matrix()
    expect = [
        np.abs(
            Rotation.from_matrix(g).as_euler("yxz", degrees=True)
            - Rotation.from_matrix(p).as_euler("yxz", degrees=True)
        )
        for p, g in zip(Rp, Rg, strict=True)
    ]
    np.testing.assert_allclose(euler_errors(Rp, Rg), np.array(expect), atol=1e-9)


def test_translation_and_add_hand_case():
    R = np.eye(3)[None]
    t_gt = np.array([[0.0, 0.0, 0.5]])
    t_pred = np.array([[0.003, -0.004, 0.5]])  # 5 mm off, the same for every vertex
    verts = np.random.default_rng(2).normal(0, 0.05, (1, 30, 3))
    np.testing.assert_allclose(translation_errors_mm(t_pred, t_gt), [[3.0, 4.0, 0.0]], atol=1e-9)
    np.testing.assert_allclose(add_mm(R, t_pred, R, t_gt, verts), [5.0], atol=1e-9)


def test_add_against_loop_and_shared_template():
    rng = np.random.default_rng(3)
    n, v = 4, 25
    Rp = Rotation.random(n, random_state=rng).as_matrix()
    Rg = Rotation.random(n, random_state=rng).as_matrix()
    tp, tg = rng.normal(0, 0.1, (n, 3)), rng.normal(0, 0.1, (n, 3))
    template = rng.normal(0, 0.08, (v, 3))
    expect = [
        np.mean([np.linalg.norm((Rp[i] @ x + tp[i]) - (Rg[i] @ x + tg[i])) for x in template]) * 1000
        for i in range(n)
    ]
    np.testing.assert_allclose(add_mm(Rp, tp, Rg, tg, template), expect, rtol=1e-12)
    np.testing.assert_allclose(
        add_mm(Rp, tp, Rg, tg, np.broadcast_to(template, (n, v, 3))), expect, rtol=1e-12
    )


def test_reconstruction_hand_case():
    gt = np.zeros((2, 2, 3))
    pred = np.array([[[0.003, 0.004, 0.0], [0.0, 0.0, 0.001]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    np.testing.assert_allclose(reconstruction_error_mm(pred, gt), [3.0, 0.0], atol=1e-9)


def test_aggregate_table_row():
    R_gt = np.stack([np.eye(3), np.eye(3)])
    R_pred = np.stack([_R("y", 10.0), _R("x", 4.0)])
    t_gt = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 0.5]])
    t_pred = np.array([[0.001, 0.0, 0.5], [0.0, 0.0, 0.506]])
    verts = np.zeros((2, 5, 3))
    vp = np.full((2, 5, 3), [0.0, 0.0, 0.002]) * np.array([1.0, 3.0])[:, None, None]  # 2 mm and 6 mm
    rows = [
        {k: v[:1] for k, v in per_sample_metrics(R_pred, t_pred, R_gt, t_gt, verts, vp).items()},
        {k: float(v[1]) for k, v in per_sample_metrics(R_pred, t_pred, R_gt, t_gt, verts, vp).items()},
    ]
    row = aggregate(rows)
    assert (
        row["yaw"] == pytest.approx(5.0)
        and row["pitch"] == pytest.approx(2.0)
        and row["roll"] == pytest.approx(0.0, abs=1e-9)
    )
    assert row["MAE_r"] == pytest.approx(7.0 / 3.0)
    assert row["GE"] == pytest.approx(7.0, abs=1e-4)
    assert (
        row["tx"] == pytest.approx(0.5)
        and row["tz"] == pytest.approx(3.0)
        and row["MAE_t"] == pytest.approx(3.5 / 3)
    )
    assert row["ADD"] == pytest.approx((1.0 + 6.0) / 2)  # vertices at the origin: |t error|
    assert row["recon_mean"] == pytest.approx(4.0) and row["recon_median"] == pytest.approx(4.0)
    with pytest.raises(ValueError):
        aggregate([])
