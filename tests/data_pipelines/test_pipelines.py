"""grain pipelines for TRG and DAD-3DNet: batch contents checked against independent numpy
geometry, determinism, and exact resume from the iterator state."""

from __future__ import annotations

from pathlib import Path

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import dad3dnet as dad_configs
from configs import trg as trg_configs
from data_pipelines.pipelines import make_dataset
from data_pipelines.pipelines.dad3dnet import HEATMAP_STRIDE
from data_pipelines.topology import load_topology
from flame_jax.dad_ground_truth import LandmarkEmbedding
from flame_jax.synthetic import head_model
from transforms import transform_for, trg_transform  # tests/data_pipelines

F = np.diag([1.0, -1.0, -1.0])


def _config(module, root: Path, workers: int = 0) -> ml_collections.ConfigDict:
    config = module.get_config("smoke")
    config.data.data_dir = str(root)
    config.data.num_workers = workers
    return config


def _batches(config, n: int, seed: int = 0, train: bool = True) -> list[dict]:
    it = iter(make_dataset(config, "train", transform_for(config), train=train, batch_size=4, seed=seed, num_epochs=None if train else 1))
    return [next(it) for _ in range(n)]


def _source(root: Path) -> dict[str, dict]:
    src = tfds.data_source("synthetic_heads/tiny", data_dir=str(root))["train"]
    return {src[i]["id"].decode(): src[i] for i in range(len(src))}


@pytest.mark.parametrize("module", [trg_configs, dad_configs])
def test_deterministic_for_a_seed(synthetic_tiny: Path, module) -> None:
    config = _config(module, synthetic_tiny)
    a, b, c = _batches(config, 2), _batches(config, 2), _batches(config, 2, seed=1)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    assert not all(np.array_equal(x["id"], z["id"]) for x, z in zip(a, c))


@pytest.mark.parametrize("workers", [0, 1])
def test_iterator_state_resumes_exactly(synthetic_tiny: Path, workers: int) -> None:
    config = _config(trg_configs, synthetic_tiny, workers)
    it = iter(make_dataset(config, "train", transform_for(config), train=True, batch_size=4, seed=3))
    for _ in range(3):
        next(it)
    state = it.get_state()
    expected = [next(it) for _ in range(2)]
    resumed = iter(make_dataset(config, "train", transform_for(config), train=True, batch_size=4, seed=3))
    resumed.set_state(state)
    for e in expected:
        got = next(resumed)
        for k in e:
            np.testing.assert_array_equal(e[k], got[k])


def test_eval_pass_covers_the_split_once(synthetic_tiny: Path) -> None:
    config = _config(trg_configs, synthetic_tiny)
    batches = list(make_dataset(config, "test", transform_for(config), train=False, batch_size=5, seed=0, num_epochs=1))
    ids = np.concatenate([b["id"] for b in batches])
    assert len(ids) == 32 and len(set(ids)) == 32 and len(batches[-1]["id"]) == 2


def test_trg_labels_match_independent_geometry(synthetic_tiny: Path) -> None:
    config = _config(trg_configs, synthetic_tiny)
    topo = load_topology(config.data)
    source = _source(synthetic_tiny)
    S = config.data.img_size
    for batch in _batches(config, 2, train=False):
        for i, name in enumerate(batch["id"]):
            ex = source[str(name)]
            R, t, K = (ex[k].astype(np.float64) for k in ("R", "t", "K"))
            cam = ex["face_vertices"] @ R.T + t
            np.testing.assert_allclose(batch["vtx_cam"][i], cam, atol=1e-5)
            uv = cam[:, :2] / cam[:, 2:] * [K[0, 0], K[1, 1]] + K[:2, 2]
            np.testing.assert_allclose(batch["vtx_img"][i][:, :2], uv, rtol=1e-5, atol=1e-3)
            # The test box: square, 1.5 x the landmarks' extent, centred on them.
            lmk = uv[topo.kpt_ind]
            l, tp, r, b = batch["bbox_info"][i][:4]
            assert abs((l + r) / 2 - (lmk[:, 0].max() + lmk[:, 0].min()) / 2) <= 1.0
            assert abs((r - l) - 1.5 * (lmk.max(0) - lmk.min(0)).max()) <= 2.0
            np.testing.assert_allclose(batch["bbox_info"][i][4:], [K[0, 0], 128, 128], rtol=1e-6)
            # Crop intrinsics map camera points to crop pixels; landmarks normalised to [-1, 1].
            Kc = batch["K_crop"][i].astype(np.float64)
            crop_uv = cam[:, :2] / cam[:, 2:] * [Kc[0, 0], Kc[1, 1]] + Kc[:2, 2]
            np.testing.assert_allclose(crop_uv, (uv - [l, tp]) * S / (r - l), atol=1e-3)
            np.testing.assert_allclose(batch["lmk68_crop"][i][:, :2], crop_uv[topo.kpt_ind] / S * 2 - 1, atol=1e-4)
            assert np.all(batch["lmk68_crop"][i][:, 2] == 1)


def test_trg_flip_mirrors_the_labels(synthetic_tiny: Path) -> None:
    config = _config(trg_configs, synthetic_tiny)
    transform = trg_transform(config)
    ex = next(iter(_source(synthetic_tiny).values()))
    config.data.augment.update(flip_p=1.0, centre_jitter=0.0, scale_jitter=(1.0, 1.0), rotate_p=0.0, color_jitter=(0, 0, 0, 0))
    flipped = trg_transform(config)(ex, np.random.default_rng(0))
    plain = transform(ex, None)
    W = ex["image"].shape[1]
    flip = load_topology(config.data).flip_index
    # Vertex i of the flipped face is the mirror image of vertex flip[i]: u -> W - u, same v.
    np.testing.assert_allclose(flipped["vtx_img"][:, 0], W - plain["vtx_img"][flip, 0], atol=1e-2)
    np.testing.assert_allclose(flipped["vtx_img"][:, 1], plain["vtx_img"][flip, 1], atol=1e-2)
    S = np.diag([-1.0, 1, 1])
    np.testing.assert_allclose(flipped["R"], S @ plain["R"] @ S, atol=1e-6)
    # The flipped crop is the mirrored plain crop, up to the box's 1-pixel int truncation.
    mirrored = np.abs(flipped["img"] - plain["img"][:, ::-1]).mean()
    unmirrored = np.abs(flipped["img"] - plain["img"]).mean()
    assert mirrored < 0.3 * unmirrored


def test_trg_rotation_keeps_the_head_origin_and_turns_the_face(synthetic_tiny: Path) -> None:
    config = _config(trg_configs, synthetic_tiny)
    config.data.augment.update(flip_p=0.0, rotate_p=1.0, rotate_deg=30.0, color_jitter=(0, 0, 0, 0))
    ex = next(iter(_source(synthetic_tiny).values()))
    out = trg_transform(config)(ex, np.random.default_rng(1))
    plain = trg_transform(config)(ex, None)
    np.testing.assert_allclose(out["t"], plain["t"], atol=1e-6)
    Rrel = out["R"] @ plain["R"].T  # a rotation about the optical axis
    np.testing.assert_allclose(Rrel[2], [0, 0, 1], atol=1e-5)
    # The box is centred on the projected head origin.
    K, t = ex["K"].astype(np.float64), ex["t"].astype(np.float64)
    origin = K[:2, :2] @ (t[:2] / t[2]) + K[:2, 2]
    l, tp, r, b = out["bbox_info"][:4]
    np.testing.assert_allclose([(l + r) / 2, (tp + (tp + r - l)) / 2], origin, atol=1.0)


def test_dad_targets_go_back_to_the_image(synthetic_tiny: Path) -> None:
    config = _config(dad_configs, synthetic_tiny)
    config.data.val_jitter = False
    emb = LandmarkEmbedding.from_flame(head_model(config.flame.synthetic_seed, config.model.n_shape, config.model.n_expr))
    source = _source(synthetic_tiny)
    S = config.data.img_size
    batch = _batches(config, 1, train=False)[0]
    for i, name in enumerate(batch["id"]):
        ex = source[str(name)]
        R, t, K = (ex[k].astype(np.float64) for k in ("R", "t", "K"))
        cam = (emb(ex["vertices"]) @ F) @ R.T + t
        gt = cam[:, :2] / cam[:, 2:] * [K[0, 0], K[1, 1]] + K[:2, 2]  # pinhole, not the OpenGL path
        in_image = (batch["landmarks"][i] * S - batch["crop_pad"][i]) / batch["crop_scale"][i] + batch["crop_box"][i][:2]
        np.testing.assert_allclose(in_image, gt, atol=2e-2)
        present = batch["presence"][i] > 0
        x, y, w, h = batch["crop_box"][i]
        inside = (gt[:, 0] > x) & (gt[:, 0] < x + w) & (gt[:, 1] > y) & (gt[:, 1] < y + h)
        np.testing.assert_array_equal(present, inside)
        # Each present landmark's heatmap peaks (1.0) at int(xy / 4).
        hm = batch["heatmap"][i]
        for k in np.where(present)[0][:10]:
            cx, cy = (batch["landmarks"][i][k] * S / HEATMAP_STRIDE).astype(int)
            if 0 <= cx < hm.shape[1] and 0 <= cy < hm.shape[0]:
                assert hm[cy, cx, k] == 1.0 and hm[..., k].max() == 1.0
        assert np.all(hm[..., ~present] == 0)
        np.testing.assert_allclose(batch["vertices"][i], ex["vertices"])


def test_dad_val_jitter_switch(synthetic_tiny: Path) -> None:
    config = _config(dad_configs, synthetic_tiny)
    jittered = [_batches(config, 1, seed=s, train=False)[0]["crop_box"] for s in (0, 1)]
    assert not np.array_equal(*jittered)
    config.data.val_jitter = False
    fixed = [_batches(config, 1, seed=s, train=False)[0]["crop_box"] for s in (0, 1)]
    np.testing.assert_array_equal(*fixed)
