"""TRG model: configuration variants, train/eval modes, buffers, checkpoints, import/export CLIs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from jaxhead import checkpoint
from jaxhead.export import export_checkpoint
from jaxhead.import_torch import import_checkpoint
from jaxhead.interop.state_dict_io import read_state_dict, write_state_dict
from jaxhead.interop.trg import load_torchvision_resnet18, trg_to_state_dict
from jaxhead.models import build_model
from jaxhead.models.buffers import Buffer
from jaxhead.models.trg import TRG, initial_pose, model_config
from jaxhead.ops.grid_sample import grid_sample_points

import reference_files  # tests/jaxhead

REPO = Path(__file__).resolve().parents[2]
V, S, G, B = 12, 6, 4, 2
BUFFERS = ("init_face", "init_pose", "points_grid", "subsample")


def tiny_config(**overrides) -> ml_collections.ConfigDict:
    cfg = model_config()
    cfg.update(
        dict(
            img_size=64,
            num_vertices=V,
            num_sampled=S,
            grid_size=G,
            width_multiplier=0.0625,
            regressor_hidden=16,
        )
    )
    cfg.update(overrides)
    return cfg


def tiny_model(cfg: ml_collections.ConfigDict) -> TRG:
    rng = np.random.default_rng(0)
    face = rng.normal(0, 0.05, (V, 3)).astype(np.float32)
    pose = initial_pose(np.eye(3), cfg, np.array([0.0, 0.0, 0.5]))
    return TRG(cfg, rngs=nnx.Rngs(0), init_face=face, init_pose=pose, subsample=np.arange(0, V, 2))


def tiny_inputs():
    rng = np.random.default_rng(1)
    img = jnp.asarray(rng.normal(size=(B, 64, 64, 3)), jnp.float32)
    K = jnp.tile(jnp.array([[130.0, 0, 32], [0, 130, 32], [0, 0, 1]]), (B, 1, 1))
    bbox = jnp.tile(jnp.array([200.0, 150, 400, 350, 630, 600, 600]), (B, 1))
    return img, K, bbox


def run(model: TRG) -> dict:
    return jax.tree.map(np.asarray, nnx.jit(lambda m, *a: m(*a))(model, *tiny_inputs()))


@pytest.mark.parametrize(
    "overrides, n_iter, mesh_iters, scales",
    [
        ({}, 3, 2, (0, 1, 2)),
        ({"num_iterations": 2}, 2, 1, (1, 2)),
        ({"num_iterations": 1}, 1, 0, (2,)),
        ({"multi_scale": False, "num_iterations": 4}, 4, 3, (2, 2, 2, 2)),
        ({"variant": "t_prediction"}, 3, 2, (0, 1, 2)),
        ({"variant": "grid_sampled"}, 3, 0, (0, 1, 2)),
        ({"variant": "landmark_free"}, 3, 0, (0, 1, 2)),
    ],
)
def test_variants(overrides, n_iter, mesh_iters, scales):
    cfg = tiny_config(**overrides)
    model = tiny_model(cfg)
    model.eval()
    out = run(model)
    assert len(out["output"]) == n_iter + 1 and len(out["samp_pt"]) == mesh_iters
    assert [f.shape[1] for f in out["feat_deconv"]] == [4, 8, 16]
    for i, scale in enumerate(scales):
        n_points = S if i >= n_iter - mesh_iters else G * G
        assert out["mlp_feat"][i].shape == (B, 5 * n_points)
        if n_points == G * G:  # grid iterations: the features of the expected scale at the grid
            grid = np.broadcast_to(np.asarray(model.points_grid[...]), (B, G * G, 2))
            want = np.asarray(grid_sample_points(jnp.asarray(out["feat_deconv"][scale]), jnp.asarray(grid)))
            np.testing.assert_allclose(out["point_feat"][i], want, atol=1e-6)
    last = out["output"][-1]
    assert (
        last["R"].shape == (B, 3, 3)
        and last["t"].shape == (B, 3)
        and last["pred_face_cam"].shape == (B, V, 3)
    )
    np.testing.assert_allclose(
        last["R"] @ np.swapaxes(last["R"], 1, 2), np.broadcast_to(np.eye(3), (B, 3, 3)), atol=1e-5
    )
    cam = np.einsum("bij,bnj->bni", last["R"], last["pred_face_world"]) + last["t"][:, None]
    np.testing.assert_allclose(last["pred_face_cam"], cam, atol=1e-6)
    if cfg.variant == "landmark_free":
        assert "pred_lmk68" not in out and model.regressors[0].decshape is None
        np.testing.assert_array_equal(last["pred_face_world"], out["output"][0]["pred_face_world"])
    else:
        assert out["pred_lmk68"].shape == (B, 68, 2) and np.all(np.abs(out["pred_lmk68"]) <= 1)
        assert not np.array_equal(last["pred_face_world"], out["output"][0]["pred_face_world"])
    if cfg.variant == "t_prediction":
        np.testing.assert_array_equal(last["t"], last["pred_pose"][:, 6:])


def test_sampling_points_are_the_projected_subsampled_mesh():
    model = tiny_model(tiny_config())
    model.eval()
    out = run(model)
    _, K, _ = tiny_inputs()
    cam = out["output"][1]["pred_face_cam"][:, np.arange(0, V, 2)]
    uvw = np.einsum("bij,bnj->bni", np.asarray(K), cam)
    np.testing.assert_allclose(out["samp_pt"][0], uvw[..., :2] / uvw[..., 2:], rtol=1e-5)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"variant": "nope"}, "variant"),
        ({"num_iterations": 4}, "multi_scale"),
        ({"num_iterations": 0}, "num_iterations"),
        ({"img_size": 100}, "multiple of 32"),
    ],
)
def test_invalid_configs(overrides, match):
    with pytest.raises(ValueError, match=match):
        TRG(tiny_config(**overrides), rngs=nnx.Rngs(0))


def test_buffer_shape_is_checked():
    with pytest.raises(ValueError, match="init_face"):
        TRG(tiny_config(), rngs=nnx.Rngs(0), init_face=np.zeros((V + 1, 3)))
    with pytest.raises(ValueError, match="vertex ids"):
        TRG(tiny_config(), rngs=nnx.Rngs(0), subsample=np.arange(S) + V)


def test_initial_pose():
    cfg = model_config()
    R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(initial_pose(R, cfg), [0, -1, 1, 0, 0, 0, 1, 0, 0])
    cfg.variant = "t_prediction"
    np.testing.assert_array_equal(
        initial_pose(R, cfg, np.array([0.1, 0.2, 0.3]))[6:], np.float32([0.1, 0.2, 0.3])
    )
    with pytest.raises(ValueError, match="translation"):
        initial_pose(R, cfg)


def test_train_and_eval_modes():
    model = tiny_model(tiny_config())
    inputs = tiny_inputs()
    model.eval()
    a, b = model(*inputs), model(*inputs)
    np.testing.assert_array_equal(a["output"][-1]["pred_pose"], b["output"][-1]["pred_pose"])
    stats_before = jax.tree.map(np.array, nnx.to_pure_dict(nnx.state(model, nnx.BatchStat)))
    model.train()
    c = model(*inputs)
    stats_after = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    changed = jax.tree.map(lambda x, y: not np.array_equal(x, y), stats_before, stats_after)
    assert all(jax.tree.leaves(changed)), "train mode must update every BatchNorm's running statistics"
    d = model(*inputs)  # new dropout masks
    assert not np.allclose(c["output"][-1]["pred_pose"], d["output"][-1]["pred_pose"])
    assert not np.allclose(a["output"][-1]["pred_pose"], c["output"][-1]["pred_pose"])
    model.eval()
    e = model(*inputs)
    assert not np.array_equal(a["feat_trunk"], e["feat_trunk"])  # running statistics moved
    np.testing.assert_array_equal(e["feat_trunk"], model(*inputs)["feat_trunk"])


def test_buffers_are_state_but_not_params():
    model = tiny_model(tiny_config())
    _, params, rest = nnx.split(model, nnx.Param, ...)
    params, rest = nnx.to_pure_dict(params), nnx.to_pure_dict(rest)
    for name in BUFFERS:
        assert name not in params and name in rest
    buffers = nnx.to_pure_dict(nnx.state(model, Buffer))
    assert sorted(buffers) == sorted(BUFFERS)
    # An optimizer over the Param leaves (as training builds it) leaves the buffers untouched.
    before = {k: np.array(v) for k, v in buffers.items()}
    kernel_before = np.array(model.regressors[0].fc1.kernel[...])
    _, p, _ = nnx.split(model, nnx.Param, ...)
    tx = optax.adam(1e-1)

    @jax.jit
    def adam_step(p):
        updates, _ = tx.update(jax.tree.map(jnp.ones_like, p), tx.init(p), p)
        return optax.apply_updates(p, updates)

    nnx.update(model, adam_step(p))
    after = nnx.to_pure_dict(nnx.state(model, Buffer))
    for name in BUFFERS:
        np.testing.assert_array_equal(after[name], before[name])
    assert not np.array_equal(model.regressors[0].fc1.kernel[...], kernel_before)


def test_checkpoint_round_trip(tmp_path):
    cfg = tiny_config()
    model = tiny_model(cfg)
    model.train()
    model(*tiny_inputs())  # move the BN statistics away from their init
    model.eval()
    config = ml_collections.ConfigDict(dict(model=cfg))
    checkpoint.save_model(tmp_path, model, config)
    restored, rconfig, step = checkpoint.load_model(tmp_path)
    assert step == 0 and json.loads(rconfig.model.to_json()) == json.loads(cfg.to_json())
    want = nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.RngState)))
    got = nnx.to_pure_dict(nnx.state(restored, nnx.Not(nnx.RngState)))
    jax.tree.map(np.testing.assert_array_equal, got, want)
    np.testing.assert_array_equal(
        run(restored)["output"][-1]["pred_face_cam"], run(model)["output"][-1]["pred_face_cam"]
    )


def test_build_model_registry():
    cfg = ml_collections.ConfigDict(dict(model=tiny_config()))
    model = build_model(cfg, rngs=nnx.Rngs(0), subsample=np.arange(S))
    assert isinstance(model, TRG)
    np.testing.assert_array_equal(model.subsample[...], np.arange(S))


def test_load_torchvision_resnet18():
    source, target = tiny_model(tiny_config()), TRG(tiny_config(), rngs=nnx.Rngs(5))
    prefix = "feature_extractor."
    sd = {k[len(prefix) :]: v for k, v in trg_to_state_dict(source).items() if k.startswith(prefix)}
    sd.update({"fc.weight": np.zeros((1000, 32), np.float32), "fc.bias": np.zeros(1000, np.float32)})
    load_torchvision_resnet18(target, sd)
    want = nnx.to_pure_dict(nnx.state(source.trunk, nnx.Not(nnx.RngState)))
    jax.tree.map(
        np.testing.assert_array_equal, nnx.to_pure_dict(nnx.state(target.trunk, nnx.Not(nnx.RngState))), want
    )
    assert not np.array_equal(target.regressors[0].fc1.kernel[...], source.regressors[0].fc1.kernel[...])
    del sd["layer4.1.bn2.running_var"]
    with pytest.raises(ValueError, match="layer4.1.bn2.running_var"):
        load_torchvision_resnet18(target, sd)


def test_import_then_export(shared_dir, tmp_path):
    sd = reference_files.official_state_dict(shared_dir, "trg")
    src = tmp_path / "state_dict.safetensors"
    write_state_dict(src, sd)
    run_dir = tmp_path / "run"
    config = ml_collections.ConfigDict(dict(model=model_config()))
    import_checkpoint("trg", src, run_dir, config=config, trg_assets=str(shared_dir / "assets" / "trg"))
    with pytest.raises(FileExistsError):
        import_checkpoint("trg", src, run_dir, config=config, trg_assets=str(shared_dir / "assets" / "trg"))
    out = tmp_path / "export.safetensors"
    export_checkpoint(run_dir, out)
    back = read_state_dict(out)
    assert list(back) == list(sd)
    for key, value in sd.items():
        assert back[key].dtype == value.dtype and back[key].shape == value.shape, key
        assert back[key].tobytes() == value.tobytes(), key


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_errors(tmp_path):
    config_file = tmp_path / "cfg.py"
    config_file.write_text(
        "import ml_collections\nfrom jaxhead.models.trg import model_config\n\n"
        "def get_config():\n    return ml_collections.ConfigDict(dict(model=model_config()))\n"
    )
    ckpt = tmp_path / "sd.safetensors"
    write_state_dict(ckpt, {"points_grid": np.zeros((1, 2, 324), np.float32)})
    res = _cli(
        "jaxhead.import_torch",
        "--model",
        "trg",
        "--checkpoint",
        str(ckpt),
        "--workdir",
        str(tmp_path / "r"),
        f"--config={config_file}",
    )
    assert res.returncode != 0 and "--trg_assets is required" in res.stderr
    res = _cli("jaxhead.export", "--workdir", str(tmp_path / "none"), "--out", str(tmp_path / "m.npz"))
    assert res.returncode != 0 and "unknown state-dict format" in res.stderr
    res = _cli("jaxhead.export", "--workdir", str(tmp_path / "none"), "--out", str(tmp_path / "m.pth"))
    assert res.returncode != 0 and "no checkpoint under" in res.stderr
