"""The device augmentation (`data_pipelines.augment`) against the numpy reference of the grain
pipelines, run with the same parameters: the same crop (mean abs difference <= 1/255) and the same
K, R, t, boxes and vertex labels (<= 1e-5, relative for pixel-valued fields)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import dad3dnet as dad_configs
from configs import trg as trg_configs
from data_pipelines import image_ops
from data_pipelines.augment import dad3dnet as dad_aug
from data_pipelines.augment import image as im
from data_pipelines.augment import trg as trg_aug
from data_pipelines.pipelines.dad3dnet import gaussian_heatmaps
from data_pipelines.pipelines.trg import TRGTransform
from data_pipelines.topology import load_topology
from transforms import transform_for  # tests/data_pipelines

GEOMETRY = ("K", "K_crop", "bbox_info", "R", "t", "vtx_world", "vtx_cam", "vtx_img", "lmk68_crop", "eval_vertices")


def _examples(root: Path, n: int) -> list[dict[str, Any]]:
    src = tfds.data_source("synthetic_heads/tiny", data_dir=str(root))["train"]
    return [src[i] for i in range(n)]


def _stack(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([r[k] for r in rows]) for k in rows[0] if k != "id"}


def _row(params: dict[str, jax.Array], i: int) -> dict[str, Any]:
    p = {k: np.asarray(v[i]) for k, v in params.items()}
    return dict(p, flip=bool(p["flip"]), rotate=bool(p["rotate"]), mask=bool(p["mask"]))


def _denormalized(img: np.ndarray) -> np.ndarray:
    return np.asarray(img) * image_ops.IMAGENET_STD + image_ops.IMAGENET_MEAN


def _assert_crop_close(device: np.ndarray, reference: np.ndarray) -> None:
    diff = np.abs(_denormalized(device) - _denormalized(reference))
    assert diff.mean() <= 1.0 / 255.0, diff.mean() * 255


def test_warp_matches_pil() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    # Rotated, scaled and shifted so that part of the output falls outside the source.
    A = image_ops.compose(image_ops.box_to_crop(np.array([-6.0, 3.0, 40.0, 49.0]), 32),
                          image_ops.rotation_about(np.array([20.0, 20.0]), 0.4))
    reference = image_ops.warp_affine(image, A, (32, 32)).astype(np.float32)
    device = np.round(255 * np.asarray(im.warp(jnp.asarray(image), im.invert(jnp.asarray(A, jnp.float32)), (32, 32))))
    assert np.mean(device == reference) > 0.99 and np.abs(device - reference).max() <= 1
    np.testing.assert_array_equal(device == 0, reference == 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_color_jitter_matches_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    order, values = image_ops.sample_color_jitter(rng, 0.5, 0.5, 0.5, 0.3)
    reference = image_ops.apply_color_jitter(image, order, values).astype(np.float32) / 255.0
    device = np.asarray(im.color_jitter(jnp.asarray(image, jnp.float32) / 255.0, jnp.asarray(order), jnp.asarray(values, jnp.float32)))
    assert np.abs(device - reference).mean() <= 0.1 / 255.0
    assert np.abs(device - reference).max() <= 1.0 / 255.0 + 1e-6


def _trg_setup(root: Path | None = None):
    config = trg_configs.get_config("smoke")
    if root is not None:
        config.data.data_dir = str(root)
    topology = load_topology(config.data)
    return config, TRGTransform(config.data, topology), trg_aug.TRGAugment.from_config(config.data, topology)


def test_trg_device_matches_numpy(synthetic_tiny: Path) -> None:
    config, reference, spec = _trg_setup(synthetic_tiny)
    examples = _examples(synthetic_tiny, 8)
    for ex in examples[5:]:  # 2D-only examples, as 300W-LP: landmarks, no vertices
        ex["has_3d"] = False
    host = _stack([reference.host_fields(ex) for ex in examples])
    params = trg_aug.sample(jax.random.key(0), jnp.asarray(host["has_3d_vtx"] > 0), spec)
    # Every branch: flips, rotations of 3D and 2D-only examples, a plain one and a mask patch.
    rotate = np.array([1, 1, 0, 0, 0, 1, 0, 1], bool)
    params.update(
        flip=jnp.asarray([1, 0, 1, 0, 0, 0, 0, 0], bool),
        rotate=jnp.asarray(rotate),
        phi=jnp.where(jnp.asarray(rotate), jnp.array([0.4, -0.5, 0, 0, 0, 0.3, 0, -0.2]), 0.0),
        mask=jnp.asarray([0, 0, 0, 0, 0, 1, 0, 0], bool),
    )
    out = jax.device_get(jax.jit(lambda b, p: trg_aug.apply(b, p, spec))(host, params))
    assert set(out) == set(reference.apply(examples[0], None)) - {"id"}
    for i, ex in enumerate(examples):
        expected = reference.apply(ex, _row(params, i))
        _assert_crop_close(out["img"][i], expected["img"])
        for k in GEOMETRY:
            np.testing.assert_allclose(out[k][i], expected[k], rtol=1e-5, atol=1e-5, err_msg=f"example {i}: {k}")


def test_trg_sample_distribution() -> None:
    _, _, spec = _trg_setup()
    has_3d = jnp.arange(4000) % 4 != 0
    p = jax.device_get(trg_aug.sample(jax.random.key(1), has_3d, spec))
    h3 = np.asarray(has_3d)
    assert not p["flip"][~h3].any() and abs(p["flip"][h3].mean() - spec.flip_p) < 0.03
    assert abs(p["rotate"].mean() - spec.rotate_p) < 0.03
    assert np.all(p["phi"][~p["rotate"]] == 0) and np.abs(p["phi"]).max() <= np.deg2rad(spec.rotate_deg)
    assert np.abs(p["shift"]).max() <= spec.centre_jitter
    assert spec.scale_jitter[0] <= p["scale"].min() and p["scale"].max() <= spec.scale_jitter[1]
    np.testing.assert_array_equal(np.sort(p["colour_order"], axis=1), np.tile(np.arange(4), (len(h3), 1)))
    for j, x in enumerate(spec.color_jitter[:3]):
        assert 1 - x <= p["colour_values"][:, j].min() and p["colour_values"][:, j].max() <= 1 + x
    assert np.abs(p["colour_values"][:, 3]).max() <= spec.color_jitter[3]
    assert not p["mask"][h3].any() and abs(p["mask"][~h3].mean() - 0.15) < 0.05
    assert p["mask_yx"].min() >= 0 and p["mask_yx"].max() < spec.size - spec.size // 5


def test_dad_heatmaps_match_numpy() -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(-3, 35, (68, 2))
    presence = rng.uniform(size=68) < 0.8
    reference = gaussian_heatmaps(points, presence, 32, 11.0 / 6.0)
    device = np.asarray(dad_aug.heatmaps(jnp.asarray(points, jnp.float32), jnp.asarray(presence), 32, 11.0 / 6.0))
    steps = np.abs(np.round(255 * device) - np.round(255 * reference))
    assert np.mean(steps == 0) > 0.999 and steps.max() <= 1


def test_dad_device_matches_numpy(synthetic_tiny: Path) -> None:
    config = dad_configs.get_config("smoke")
    config.data.data_dir = str(synthetic_tiny)
    reference = transform_for(config)
    spec = dad_aug.DAD3DNetAugment.from_config(config.data)
    examples = _examples(synthetic_tiny, 6)
    host = _stack([reference.host_fields(ex) for ex in examples])
    params = dad_aug.sample(jax.random.key(0), len(examples), spec)
    # A lopsided enlargement and one that runs off the image on every side.
    params["sides"] = params["sides"].at[0].set(jnp.array([0.0, 0.6, 0.3, 0.0])).at[1].set(jnp.full(4, 2.0))
    out = jax.device_get(jax.jit(lambda b, p: dad_aug.apply(b, p, spec))(host, params))
    assert set(out) == set(reference.apply(examples[0], None)) - {"id"}
    for i, ex in enumerate(examples):
        expected = reference.apply(ex, {"sides": np.asarray(params["sides"][i])})
        _assert_crop_close(out["image"][i], expected["image"])
        for k in ("landmarks", "presence", "vertices", "crop_box", "crop_scale", "crop_pad", "head_box",
                  "model_view_matrix", "projection_matrix", "image_hw"):
            np.testing.assert_allclose(out[k][i], expected[k], rtol=1e-5, atol=1e-5, err_msg=f"example {i}: {k}")
        np.testing.assert_allclose(out["vertices_2d"][i], expected["vertices_2d"], rtol=1e-5, atol=1e-3)
        steps = np.abs(np.round(255 * out["heatmap"][i]) - np.round(255 * expected["heatmap"]))
        assert np.mean(steps == 0) > 0.999 and steps.max() <= 1
        assert expected["heatmap"].max() == 1.0  # some landmark present


@pytest.mark.parametrize("module", [trg_configs, dad_configs])
def test_train_pipeline_yields_host_batches_the_step_augments(synthetic_tiny: Path, module) -> None:
    from jaxhead.tasks import make_task
    from jaxhead.training import data as train_data

    config = module.get_config("smoke")
    config.data.data_dir = str(synthetic_tiny)
    task = make_task(config)
    batch = next(iter(train_data.train_batches(config, 4, task.transform())))
    assert batch["image"].dtype == np.uint8 and batch["image"].shape == (4, 128, 128, 3)
    out = jax.jit(task.augment)({k: v for k, v in batch.items() if k != "id"}, jax.random.key(0))
    config.data.device_augment = False
    reference = next(iter(train_data.train_batches(config, 4, task.transform())))
    assert set(out) == set(reference) - {"id"}
    for k, v in out.items():
        assert v.shape == reference[k].shape and v.dtype == reference[k].dtype, k
