"""DAD-3DNet losses: hand cases and independent numpy versions of every term and switch."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.ndimage import grey_dilation

from jaxhead.losses.dad3dnet import (
    VARIANTS,
    adaptive_wing_loss,
    criterion,
    dad3dnet_loss,
    landmarks_loss,
    loss_config,
    reprojection_loss,
    resolve_loss_config,
    soft_iou_loss,
    vertices_3d_loss,
)
from jaxhead.models.dad3dnet_mesh import reprojected_vertices, vertices_3d

from dad3dnet_test_utils import random_flame  # tests/jaxhead

V = 40
B = 2


@pytest.fixture(scope="module")
def flame():
    return random_flame(V, seed=1, landmarks=True)


# ---- independent numpy references ----


def np_smooth_l1(d):
    a = np.abs(d)
    return np.mean(np.where(a < 1.0, 0.5 * d**2, a - 0.5))


def np_soft_iou(logits, target):
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    ious = []
    for b in range(p.shape[0]):
        for c in range(p.shape[-1]):
            pp, yy = p[b, ..., c], target[b, ..., c]
            inter = (pp * yy).sum()
            ious.append((inter + 1e-6) / ((yy**2).sum() + (pp**2).sum() - inter + 1e-6))
    return 1.0 - np.mean(ious)


def np_awing(logits, y, omega=14.0, theta=0.5, eps=1.0, alpha=2.1, W=10.0):
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    out = np.empty_like(p)
    for idx in np.ndindex(p.shape):
        d, t = abs(y[idx] - p[idx]), y[idx]
        if d < theta:
            out[idx] = omega * math.log(1 + (d / eps) ** (alpha - t))
        else:
            A = (
                omega
                * (1 / (1 + (theta / eps) ** (alpha - t)))
                * (alpha - t)
                * ((theta / eps) ** (alpha - t - 1))
                / eps
            )
            C = theta * A - omega * math.log(1 + (theta / eps) ** (alpha - t))
            out[idx] = A * d - C
    M = grey_dilation((y > 0.2).astype(np.float64), size=(1, 3, 3, 1))
    return np.mean(out * (W * M + 1))


def np_cube(v):
    out = []
    for s in v:
        s = s - s.min(axis=0)
        s = s - s.max(axis=0) / 2
        out.append(s / s.max())
    return np.stack(out)


def np_rot6d(r6):
    a1, a2 = r6[:3], r6[3:]
    b1 = a1 / np.linalg.norm(a1)
    b2 = a2 - (b1 @ a2) * b1
    b2 /= np.linalg.norm(b2)
    return np.stack([b1, b2, np.cross(b1, b2)], axis=1)


def np_mesh(flame, p):
    """FLAME with the jaw at rest is linear: T + S beta, then the 0.05 m z offset."""
    v = np.asarray(flame.v_template, np.float64) + np.einsum(
        "bk,vck->bvc", p[:, :400], np.asarray(flame.shapedirs)
    )
    v[..., 2] += 0.05
    return v


def np_reproject(flame, p, size=256.0):
    v = np_mesh(flame, p)
    out = []
    for b in range(len(p)):
        R = np_rot6d(p[b, 403:409])
        xy = (v[b] @ R.T)[:, :2] * max(p[b, 412] + 1, 1e-8) + p[b, 409:411]
        out.append((xy + 1) / 2 * size)
    return np.stack(out)


def sample_params(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(B, 413)).astype(np.float32)
    p[:, 400:403] = 0.0  # jaw at rest: the numpy mesh above is exact
    p[:, 403:409] = [1, 0.1, 0, 0.1, -1, 0.2]
    p[:, 409:413] = [0.05, -0.1, 3.0, -0.2]
    return p


def sample_batch(flame, seed: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    target_p = sample_params(seed + 100)
    outputs = {
        "heatmap_logits": rng.normal(scale=3, size=(B, 8, 8, 68)).astype(np.float32),
        "params_3dmm": sample_params(seed),
        "landmarks": rng.uniform(0, 1, size=(B, 68, 2)).astype(np.float32),
    }
    heat = rng.uniform(size=(B, 8, 8, 68)) * (rng.uniform(size=(B, 8, 8, 68)) > 0.7)
    batch = {
        "heatmap": heat.astype(np.float32),
        "landmarks": rng.uniform(0, 1, size=(B, 68, 2)).astype(np.float32),
        "presence": (rng.uniform(size=(B, 68)) > 0.3).astype(np.float32),
        "vertices": (np_mesh(flame, target_p) + rng.normal(scale=1e-3, size=(B, V, 3))).astype(np.float32),
        "vertices_2d": (np_reproject(flame, target_p) + rng.normal(scale=2, size=(B, V, 2))).astype(
            np.float32
        ),
    }
    return outputs, batch


# ---- single terms ----


def test_criteria_hand_values():
    d = jnp.asarray([0.5, -2.0])
    assert float(criterion("smooth_l1", d, jnp.zeros(2))) == pytest.approx((0.125 + 1.5) / 2)
    assert float(criterion("l1", d, jnp.zeros(2))) == pytest.approx(1.25)
    assert float(criterion("mse", d, jnp.zeros(2))) == pytest.approx((0.25 + 4) / 2)
    with pytest.raises(ValueError, match="criterion"):
        criterion("huber", d, d)


def test_soft_iou():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2, size=(2, 6, 5, 4)).astype(np.float32)
    target = rng.uniform(size=(2, 6, 5, 4)).astype(np.float32)
    assert float(soft_iou_loss(logits, target)) == pytest.approx(np_soft_iou(logits, target), rel=1e-5)
    # Hand cases: a saturated prediction of a binary target is perfect; empty targets count as IoU 0.
    y = (rng.uniform(size=(2, 6, 5, 4)) > 0.5).astype(np.float32)
    assert float(soft_iou_loss(np.where(y > 0, 40.0, -40.0), y)) == pytest.approx(0.0, abs=1e-6)
    assert float(soft_iou_loss(np.zeros_like(y), np.zeros_like(y))) == pytest.approx(1.0, abs=1e-6)


def test_adaptive_wing():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=2, size=(2, 7, 6, 3)).astype(np.float32)
    y = np.clip(rng.uniform(-0.5, 1.0, size=(2, 7, 6, 3)), 0, 1).astype(np.float32)
    assert float(adaptive_wing_loss(logits, y)) == pytest.approx(np_awing(logits, y), rel=1e-5)
    assert float(adaptive_wing_loss(logits, y, map_weight=0.0)) == pytest.approx(
        np_awing(logits, y, W=0.0), rel=1e-5
    )
    # Hand case: y = 0, |d| = sigmoid(logit) = 0.25 < theta: 14 ln(1 + 0.25^2.1).
    logit = np.log(0.25 / 0.75)
    got = adaptive_wing_loss(np.full((1, 2, 2, 1), logit, np.float32), np.zeros((1, 2, 2, 1), np.float32))
    assert float(got) == pytest.approx(14 * math.log(1 + 0.25**2.1), rel=1e-5)


def test_adaptive_wing_is_continuous_at_theta():
    y = np.zeros((1, 1, 2, 1), np.float32)
    p = np.array([0.5 - 1e-4, 0.5 + 1e-4])
    logits = np.log(p / (1 - p)).reshape(1, 1, 2, 1).astype(np.float32)
    per_pixel = [float(adaptive_wing_loss(logits[:, :, i : i + 1], y[:, :, i : i + 1])) for i in range(2)]
    assert per_pixel[0] == pytest.approx(per_pixel[1], abs=5e-3)


def test_landmarks_loss_masks_absent_points():
    rng = np.random.default_rng(2)
    pred, tgt = rng.uniform(size=(2, 2, 68, 2))
    m = (rng.uniform(size=(2, 68)) > 0.5).astype(np.float32)
    got = landmarks_loss(pred[None], tgt[None], m[:1], "smooth_l1")
    assert float(got) == pytest.approx(np_smooth_l1((pred - tgt) * m[0][:, None]), rel=1e-5)
    assert float(landmarks_loss(pred[None], tgt[None], np.zeros((1, 68)), "l1")) == 0.0


def test_vertices_3d_loss(flame):
    p = sample_params(3)
    rng = np.random.default_rng(3)
    gt = np_mesh(flame, sample_params(4)) + rng.normal(scale=1e-3, size=(B, V, 3))
    subsets = {"head": 0.5, "face_w_ears": 0.75, "face": 1.0}
    want = sum(
        w * np.mean((np_cube(np_mesh(flame, p)[:, idx]) - np_cube(gt[:, idx])) ** 2)
        for name, w in subsets.items()
        for idx in [np.asarray(flame.subsets[name])]
    )
    assert float(vertices_3d_loss(flame, p, gt, subsets)) == pytest.approx(want, rel=1e-4)
    # Cube normalisation removes scale and translation: a scaled, shifted copy costs nothing.
    same = np.asarray(vertices_3d(flame, jnp.asarray(p), zero_rotation=True)) * 3.0 + [0.1, -2.0, 0.5]
    assert float(vertices_3d_loss(flame, p, same, subsets)) == pytest.approx(0.0, abs=1e-9)


def test_reprojection_loss(flame):
    p = sample_params(5)
    tgt = np_reproject(flame, sample_params(6))
    subsets = {"face": 0.5, "face_w_ears": 0.5}
    pred = np_reproject(flame, p)
    want = sum(
        w * np_smooth_l1(pred[:, flame.subsets[n]] - tgt[:, flame.subsets[n]]) for n, w in subsets.items()
    )
    assert float(reprojection_loss(flame, p, tgt, subsets)) == pytest.approx(want, rel=1e-4)
    exact = np.asarray(reprojected_vertices(flame, jnp.asarray(p)))
    assert float(reprojection_loss(flame, p, exact, subsets, "l1")) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(KeyError, match="eyeballs"):
        reprojection_loss(flame, p, tgt, {"eyeballs": 1.0})


# ---- the composed loss and its switches ----


def np_total_terms(flame, cfg, outputs, batch) -> dict[str, float]:
    p = outputs["params_3dmm"]
    if cfg.heatmap == "soft_iou":
        hm = np_soft_iou(outputs["heatmap_logits"], batch["heatmap"])
    else:
        hm = np_awing(outputs["heatmap_logits"], batch["heatmap"])
    crit = {"smooth_l1": np_smooth_l1, "l1": lambda d: np.mean(np.abs(d)), "mse": lambda d: np.mean(d**2)}
    terms = {"heatmap": cfg.heatmap_weight * hm}
    if cfg.shape_expression_loss:
        pred_v = np_mesh(flame, p)
        terms["vertices_3d"] = cfg.vertices_3d_weight * sum(
            w
            * crit[cfg.vertices_3d_criterion](
                np_cube(pred_v[:, flame.subsets[n]]) - np_cube(batch["vertices"][:, flame.subsets[n]])
            )
            for n, w in cfg.vertices_3d_subsets.items()
        )
    rep = {
        n: w
        for n, w in cfg.reprojection_subsets.items()
        if w and (n != "face" or cfg.reproject_face) and (n != "face_w_ears" or cfg.reproject_head)
    }
    pred_2d = np_reproject(flame, p)
    if rep:
        terms["reprojection"] = cfg.reprojection_weight * sum(
            w
            * crit[cfg.reprojection_criterion](
                pred_2d[:, flame.subsets[n]] - batch["vertices_2d"][:, flame.subsets[n]]
            )
            for n, w in rep.items()
        )
    m = batch["presence"][..., None]
    if cfg.reproject_landmarks68:
        faces = np.asarray(flame.faces)
        fidx = np.concatenate([np.asarray(flame.dyn_lmk_faces[0]), np.asarray(flame.lmk_faces)])
        bary = np.concatenate([np.asarray(flame.dyn_lmk_bary[0]), np.asarray(flame.lmk_bary)])
        lmk = np.einsum("lk,blkd->bld", bary, pred_2d[:, faces[fidx]])
        terms["reprojection_68"] = cfg.reprojection_weight * crit[cfg.reprojection_criterion](
            (lmk - batch["landmarks"] * 256) * m
        )
    if cfg.landmark_head:
        terms["landmarks"] = cfg.landmarks_weight * crit[cfg.landmarks_criterion](
            (outputs["landmarks"] - batch["landmarks"]) * m
        )
    return terms


EXPECTED_TERMS = {
    "official": {"heatmap", "vertices_3d", "reprojection", "landmarks"},
    "paper": {"heatmap", "vertices_3d", "reprojection", "landmarks"},
    "table7_row1": {"heatmap", "reprojection_68"},
    "table7_row2": {"heatmap", "reprojection_68", "reprojection"},
    "table7_row3": {"heatmap", "reprojection_68", "reprojection"},
    "table7_row4": {"heatmap", "reprojection_68", "reprojection", "vertices_3d"},
    "table7_row5": {"heatmap", "reprojection_68", "reprojection", "vertices_3d", "landmarks"},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_total_loss_matches_numpy(flame, variant):
    cfg = loss_config(variant)
    outputs, batch = sample_batch(flame, seed=7)
    total, terms = jax.jit(lambda o, b: dad3dnet_loss(cfg, flame, o, b))(outputs, batch)
    want = np_total_terms(flame, resolve_loss_config(cfg), outputs, batch)
    assert set(terms) == EXPECTED_TERMS[variant] == set(want)
    for k in want:
        assert float(terms[k]) == pytest.approx(want[k], rel=2e-4), k
    assert float(total) == pytest.approx(sum(want.values()), rel=2e-4)


def test_official_and_paper_settings():
    off, paper = resolve_loss_config(loss_config()), resolve_loss_config(loss_config("paper"))
    assert (off.heatmap_weight, off.vertices_3d_weight, off.reprojection_weight, off.landmarks_weight) == (
        1,
        50,
        0.05,
        100,
    )
    assert dict(off.vertices_3d_subsets) == {"head": 0.5, "face_w_ears": 0.75, "face": 1.0}
    assert dict(off.reprojection_subsets) == {"head": 0.0, "face": 0.5, "face_w_ears": 0.5}
    assert (off.heatmap, off.landmarks_criterion, off.reprojection_criterion) == (
        "soft_iou",
        "smooth_l1",
        "smooth_l1",
    )
    assert (paper.heatmap, paper.landmarks_criterion, paper.landmarks_weight) == ("awing", "l1", 1.0)
    assert (paper.vertices_3d_weight, paper.reprojection_weight, paper.heatmap_weight) == (50, 0.05, 1)
    with pytest.raises(ValueError, match="variant"):
        loss_config("table7_row6")


def test_variant_set_after_building_decides_and_fields_still_override(flame):
    """The variant is read when the loss is built: changing it on a built config (as a command-line
    override does) changes the terms, and a field set explicitly beats the variant's preset."""
    outputs, batch = sample_batch(flame, seed=8)
    cfg = loss_config()
    cfg.variant = "table7_row2"
    assert set(dad3dnet_loss(cfg, flame, outputs, batch)[1]) == EXPECTED_TERMS["table7_row2"]
    cfg.reproject_landmarks68 = False
    cfg.landmark_head = True
    cfg.reprojection_subsets.face = 0.0
    assert set(dad3dnet_loss(cfg, flame, outputs, batch)[1]) == {"heatmap", "landmarks"}
    resolved = resolve_loss_config(cfg)
    assert resolve_loss_config(resolved).to_dict() == resolved.to_dict()
    assert resolved.heatmap == "soft_iou" and resolved.reprojection_subsets.face_w_ears == 0.5


def test_face_only_reprojection_switch(flame):
    cfg = loss_config("table7_row2")
    outputs, batch = sample_batch(flame, seed=8)
    _, terms = dad3dnet_loss(cfg, flame, outputs, batch)
    face_only = reprojection_loss(flame, outputs["params_3dmm"], batch["vertices_2d"], {"face": 0.5})
    assert float(terms["reprojection"]) == pytest.approx(0.05 * float(face_only), rel=1e-6)


def test_gradients_are_finite(flame):
    cfg = loss_config()
    outputs, batch = sample_batch(flame, seed=9)
    grads = jax.jit(jax.grad(lambda o: dad3dnet_loss(cfg, flame, o, batch)[0]))(outputs)
    for k, g in grads.items():
        assert np.all(np.isfinite(g)) and np.abs(g).max() > 0, k
