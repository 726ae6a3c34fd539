"""TRG loss terms: hand cases, an independent numpy version of the official loss, gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx
from scipy.spatial.transform import Rotation

from jaxhead.losses.trg import (
    confident_l1,
    edge_length_l1,
    full_to_crop_normalised,
    iteration_weights,
    loss_config,
    rotation_mse,
    trg_loss,
    vertex_l1,
)
from jaxhead.models.trg import TRG, model_config
from jaxhead.ops.grid_sample import grid_sample_points

V, B = 12, 3
KPT = np.arange(68) % V
TRIANGLES = np.array([[0, 1, 2], [2, 3, 4], [5, 6, 7], [8, 9, 10], [9, 10, 11]])


def test_vertex_l1_averages_selected_rows():
    pred = np.zeros((2, 2, 3), np.float32)
    gt = np.zeros((2, 2, 3), np.float32)
    gt[0] = [[1, 2, 3], [0, 0, 6]]  # row 0: |d| sums to 12 over 6 entries
    gt[1] = 100.0  # excluded by has = 0
    assert float(vertex_l1(pred, gt, jnp.array([1, 0]))) == pytest.approx(2.0)
    assert float(vertex_l1(pred, gt, jnp.array([0, 0]))) == 0.0
    assert float(vertex_l1(pred, gt, jnp.array([1, 1]))) == pytest.approx((12 + 600) / 12)


def test_confident_l1_divides_by_all_entries():
    pred = np.zeros((1, 2, 2), np.float32)
    gt = np.array([[[4.0, 2.0, 1.0], [8.0, 8.0, 0.0]]], np.float32)  # second point has conf 0
    assert float(confident_l1(pred, gt)) == pytest.approx((4 + 2) / 4)


def test_rotation_mse_hand_case():
    Rz90 = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    R_pred = np.stack([np.eye(3), np.eye(3)])
    R_gt = np.stack([Rz90, np.eye(3) * 5])
    # I - Rz(90) = [[1, 1, 0], [-1, 1, 0], [0, 0, 0]]: squared sum 4 over 9 entries.
    assert float(rotation_mse(R_pred, R_gt, jnp.array([1, 0]))) == pytest.approx(4 / 9, rel=1e-6)
    assert float(rotation_mse(R_pred, R_gt, jnp.array([0, 0]))) == 0.0


def test_edge_length_hand_case():
    tri = np.array([[0, 1, 2]])
    gt = np.array([[[0, 0, 0], [3, 0, 0], [0, 4, 0]]], np.float32)  # edges 3, 5, 4
    pred = 2 * gt  # every edge twice as long: errors 3, 5, 4, one triangle per slot
    assert float(edge_length_l1(pred, gt, tri, jnp.array([1]))) == pytest.approx(12.0)
    assert float(edge_length_l1(pred, gt, tri, jnp.array([0]))) == 0.0


def test_full_to_crop_normalised_hand_case():
    bbox = np.array([[100.0, 50.0, 300.0, 250.0, 500.0, 480.0, 640.0]])
    pix = np.array([[[200.0, 150.0], [100.0, 50.0], [300.0, 250.0]]])
    out = np.asarray(full_to_crop_normalised(pix, bbox, 192))
    np.testing.assert_allclose(out, [[[0, 0], [-1, -1], [1, 1]]], atol=1e-6)


def test_iteration_weights():
    assert iteration_weights(3, 0.5) == [0.25, 0.5, 1.0]
    assert iteration_weights(1, 0.5) == [1.0]


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    f = np.float32

    def rot(n):
        return Rotation.random(n, random_state=rng).as_matrix().astype(f)

    def pred_state():
        R = rot(B)
        world = rng.normal(0, 0.05, (B, V, 3)).astype(f)
        t = np.stack([rng.normal(0, 0.02, B), rng.normal(0, 0.02, B), rng.uniform(0.4, 0.6, B)], -1).astype(f)
        cam = np.einsum("bij,bnj->bni", R, world) + t[:, None]
        return dict(pred_face_world=world, R=R, t=t, pred_face_cam=cam.astype(f))

    output = {
        "output": [pred_state() for _ in range(4)],
        "pred_lmk68": rng.uniform(-1, 1, (B, 68, 2)).astype(f),
    }
    K = np.tile(np.array([[600, 0, 320], [0, 600, 240], [0, 0, 1]], f), (B, 1, 1))
    batch = dict(
        img=np.zeros((B, 192, 192, 3), f),
        K=K,
        bbox_info=np.tile(np.array([220, 140, 420, 340, 600, 480, 640], f), (B, 1)),
        R=rot(B),
        vtx_world=rng.normal(0, 0.05, (B, V, 3)).astype(f),
        vtx_cam=rng.normal(0, 0.05, (B, V, 3)).astype(f),
        vtx_img=np.concatenate([rng.uniform(0, 640, (B, V, 2)), rng.integers(0, 2, (B, V, 1))], -1).astype(f),
        lmk68_crop=np.concatenate(
            [rng.uniform(-1, 1, (B, 68, 2)), rng.integers(0, 2, (B, 68, 1))], -1
        ).astype(f),
        has_3d_vtx=np.array([1, 0, 1], f),
        has_rot=np.array([0, 1, 1], f),
    )
    return output, batch


def _numpy_official_loss(output, batch, w):
    """The official train.py loop, written with boolean row selection like the PyTorch code."""
    sel3d = batch["has_3d_vtx"] == 1
    selrot = batch["has_rot"] == 1
    crop = batch["img"].shape[1]
    idx5 = [39, 42, 33, 48, 54]
    preds = output["output"][1:]
    terms = dict(world=0.0, cam=0.0, img=0.0, rot=0.0, edge=0.0, lmk5=0.0)
    for t, p in enumerate(preds, start=1):
        loop_w = 0.5 ** (len(preds) - t)
        world = np.abs(p["pred_face_world"][sel3d] - batch["vtx_world"][sel3d]).mean() if sel3d.any() else 0.0
        cam = np.abs(p["pred_face_cam"][sel3d] - batch["vtx_cam"][sel3d]).mean() if sel3d.any() else 0.0
        # Official: bmm with the transposed K, then divide by z.
        proj = p["pred_face_cam"].astype(np.float64) @ np.swapaxes(batch["K"], 1, 2)
        proj = proj[..., :2] / proj[..., 2:]
        img = (batch["vtx_img"][..., 2:] * np.abs(proj - batch["vtx_img"][..., :2])).mean()
        pt5 = proj[:, KPT][:, idx5].copy()
        b = batch["bbox_info"][:, 2] - batch["bbox_info"][:, 0]
        pt5[..., 0] -= batch["bbox_info"][:, None, 0]
        pt5[..., 1] -= batch["bbox_info"][:, None, 1]
        pt5 = pt5 * (crop / b)[:, None, None] / crop * 2 - 1
        g5 = batch["lmk68_crop"][:, idx5]
        lmk5 = (g5[..., 2:] * np.abs(pt5 - g5[..., :2])).mean()
        # Official compares the transposed matrices pred_R_t[:3, :3] and R_t[:3, :3].
        RT_pred, RT_gt = np.swapaxes(p["R"], 1, 2), np.swapaxes(batch["R"], 1, 2)
        rot = ((RT_pred[selrot] - RT_gt[selrot]) ** 2).mean() if selrot.any() else 0.0
        edge = 0.0
        if t == len(preds):
            pv, gv = p["pred_face_world"][sel3d], batch["vtx_world"][sel3d]
            for k in range(3):
                a, c = TRIANGLES[:, k], TRIANGLES[:, (k + 1) % 3]
                dp = np.linalg.norm(pv[:, a] - pv[:, c], axis=-1)
                dg = np.linalg.norm(gv[:, a] - gv[:, c], axis=-1)
                edge += np.abs(dp - dg).mean()
        for name, val in (
            ("world", world),
            ("cam", cam),
            ("img", img),
            ("rot", rot),
            ("edge", edge),
            ("lmk5", lmk5),
        ):
            terms[name] += loop_w * w[name] * val
    g = batch["lmk68_crop"]
    terms["lmk68"] = w["lmk68"] * (g[..., 2:] * np.abs(output["pred_lmk68"] - g[..., :2])).mean()
    return terms


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_independent_numpy(seed):
    output, batch = _random_case(seed)
    cfg = loss_config()
    total, terms = jax.jit(lambda o, b: trg_loss(o, b, cfg, kpt_ind=KPT, triangles=TRIANGLES))(output, batch)
    ref = _numpy_official_loss(output, batch, cfg)
    assert set(terms) == set(ref)
    for name, val in ref.items():
        assert float(terms[name]) == pytest.approx(val, rel=2e-5, abs=1e-7), name
    assert float(total) == pytest.approx(sum(ref.values()), rel=2e-5)


def test_masked_terms_vanish_without_labels():
    output, batch = _random_case(2)
    batch["has_3d_vtx"] = np.zeros(B, np.float32)
    batch["has_rot"] = np.zeros(B, np.float32)
    _, terms = trg_loss(output, batch, loss_config(), kpt_ind=KPT, triangles=TRIANGLES)
    for name in ("world", "cam", "rot", "edge"):
        assert float(terms[name]) == 0.0
    assert float(terms["img"]) > 0 and float(terms["lmk5"]) > 0


def test_grid_sample_gradient_wrt_points_matches_finite_differences():
    rng = np.random.default_rng(0)
    feat = jnp.asarray(rng.normal(size=(1, 6, 7, 4)), jnp.float32)
    pts = jnp.asarray(rng.uniform(-0.9, 0.9, (1, 5, 2)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(1, 5, 4)), jnp.float32)

    def f(p):
        return jnp.sum(w * grid_sample_points(feat, p))

    g = np.asarray(jax.grad(f)(pts))
    eps = 1e-3
    for n in range(5):
        for c in range(2):
            d = jnp.zeros_like(pts).at[0, n, c].set(eps)
            fd = (float(f(pts + d)) - float(f(pts - d))) / (2 * eps)
            assert g[0, n, c] == pytest.approx(fd, rel=2e-2, abs=2e-3)
    assert np.all(np.abs(g) > 0)


def _tiny_config() -> ml_collections.ConfigDict:
    cfg = model_config()
    cfg.update(
        dict(
            img_size=64,
            num_vertices=V,
            num_sampled=6,
            grid_size=4,
            width_multiplier=0.0625,
            regressor_hidden=16,
        )
    )
    return cfg


def _tiny_model(cfg):
    rng = np.random.default_rng(0)
    face = rng.normal(0, 0.05, (V, 3)).astype(np.float32)
    pose = np.array([1, 0, 0, 1, 0, 0, 1, 0, 0], np.float32)
    return TRG(cfg, rngs=nnx.Rngs(0), init_face=face, init_pose=pose, subsample=np.arange(0, V, 2))


def _tiny_inputs(n: int = 2):
    rng = np.random.default_rng(1)
    img = jnp.asarray(rng.normal(size=(n, 64, 64, 3)), jnp.float32)
    K = jnp.tile(jnp.array([[130.0, 0, 32], [0, 130, 32], [0, 0, 1]]), (n, 1, 1))
    bbox = jnp.tile(jnp.array([200.0, 150, 400, 350, 630, 600, 600]), (n, 1))
    return img, K, bbox


def test_gradients_flow_through_the_sampling_points():
    """Iteration 2 samples at points projected with iteration 1's pose: its features depend on
    regressor 0 only through those points, so a nonzero gradient proves the flow."""
    model = _tiny_model(_tiny_config())
    model.eval()
    img, K, bbox = _tiny_inputs()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def second_features(p):
        return jnp.sum(nnx.merge(graphdef, p, rest)(img, K, bbox)["mlp_feat"][1] ** 2)

    g = nnx.to_pure_dict(jax.jit(jax.grad(second_features))(params))["regressors"][0]
    for name in ("decpose", "decshape"):
        kernel = np.asarray(g[name]["kernel"])
        assert np.all(np.isfinite(kernel)) and np.abs(kernel).max() > 0, name


def test_loss_gradient_reaches_every_parameter_group():
    cfg = _tiny_config()
    model = _tiny_model(cfg)
    img, K, bbox = _tiny_inputs(3)
    _, batch = _random_case(3)
    batch.update(img=img, K_crop=K, bbox_info=bbox)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(p):
        m = nnx.merge(graphdef, p, rest, copy=True)  # train-mode BN writes its statistics
        return trg_loss(m(img, K, bbox), batch, loss_config(), kpt_ind=KPT, triangles=TRIANGLES)[0]

    grads = nnx.to_pure_dict(jax.jit(jax.grad(loss))(params))
    for group in ("trunk", "deconv", "samplers", "regressors", "landmark_head"):
        leaves = jax.tree.leaves(grads[group])
        assert all(np.all(np.isfinite(x)) for x in leaves), group
        assert any(float(jnp.abs(x).max()) > 0 for x in leaves), group
