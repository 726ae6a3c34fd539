"""TRG against the official model: golden outputs, state-dict format and round trips.

Weights come from ../shared/reference/official_weights.py (seed 0), the recipe the goldens
were made with; the ARKit subsample indices from the official assets in ../shared/assets/trg.
Goldens are NCHW and use the official transposed K_crop / R_t; the port is NHWC, column form.
The model is built and compiled once per module.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxhead.interop import converter
from jaxhead.interop.state_dict_io import read_state_dict, write_state_dict
from data_pipelines.trg_release import load_arkit_topology, load_official_init
from jaxhead.interop.trg import trg_from_state_dict, trg_to_state_dict
from jaxhead.models.trg import initial_pose, model_config, points_grid

import reference_files  # tests/jaxhead

ITERATION_OUTPUTS = (
    "pred_face_world",
    "pred_pose",
    "pred_R_t",
    "pred_face_cam",
    "pred_cor_param",
    "point_feat",
    "mlp_feat",
)
# Sampled point features amplify the float32 error of the sampling positions.
LOOSE = {"point_feat": 3e-4}


@pytest.fixture(scope="module")
def manifest(shared_dir: Path) -> list[tuple[str, list[int], str]]:
    return reference_files.manifest(shared_dir, "trg")


@pytest.fixture(scope="module")
def official_sd(shared_dir: Path) -> dict[str, np.ndarray]:
    return reference_files.official_state_dict(shared_dir, "trg")


@pytest.fixture(scope="module")
def golden(shared_dir: Path) -> dict[str, np.ndarray]:
    with np.load(shared_dir / "reference" / "trg_golden.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def topology(shared_dir: Path) -> dict[str, np.ndarray]:
    return load_arkit_topology(shared_dir / "assets" / "trg")


@pytest.fixture(scope="module")
def model(official_sd, topology):
    net = trg_from_state_dict(official_sd, model_config(), subsample=topology["subsample"])
    net.eval()
    return net


def _pose_to_official(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Column-form R, t -> the official transposed 4x4 [[R, t], [0, 1]]^T."""
    M = np.zeros(R.shape[:-2] + (4, 4), R.dtype)
    M[..., :3, :3] = R
    M[..., :3, 3] = t
    M[..., 3, 3] = 1.0
    return np.swapaxes(M, -1, -2)


@pytest.fixture(scope="module")
def outputs(model, golden) -> dict[str, np.ndarray]:
    """The port's outputs under the goldens' names and layouts (NCHW, transposed poses)."""
    img = jnp.asarray(golden["x_nchw"].transpose(0, 2, 3, 1))
    K_crop = jnp.asarray(np.swapaxes(golden["K_crop"][:, :3, :3], 1, 2))  # 4x3 [K^T; 0] -> K
    bbox_info = jnp.asarray(golden["bbox_info"])
    with jax.default_matmul_precision("highest"):
        out = nnx.jit(lambda m, x, k, b: m(x, k, b))(model, img, K_crop, bbox_info)
    out = jax.tree.map(np.asarray, out)
    res = {
        "pred_lmk68": out["pred_lmk68"],
        "feat_trunk": out["feat_trunk"].transpose(0, 3, 1, 2),
        "lmk68_heatmap_logits": out["lmk68_heatmap_logits"].transpose(0, 3, 1, 2),
    }
    for k, f in enumerate(out["feat_deconv"]):
        res[f"feat_deconv{k}"] = f.transpose(0, 3, 1, 2)
    for k, pts in enumerate(out["samp_pt"]):
        res[f"samp_pt_{k}"] = pts
    for i, it in enumerate(out["output"][1:]):
        for name in ("pred_face_world", "pred_pose", "pred_face_cam", "pred_cor_param"):
            res[f"iter{i}_{name}"] = it[name]
        res[f"iter{i}_pred_R_t"] = _pose_to_official(it["R"], it["t"])
        res[f"iter{i}_point_feat"] = out["point_feat"][i].transpose(0, 2, 1)
        res[f"iter{i}_mlp_feat"] = out["mlp_feat"][i]
    res["init"] = out["output"][0]
    return res


GOLDEN_KEYS = (
    [f"iter{i}_{n}" for i in range(3) for n in ITERATION_OUTPUTS]
    + ["samp_pt_0", "samp_pt_1", "pred_lmk68", "lmk68_heatmap_logits", "feat_trunk"]
    + [f"feat_deconv{k}" for k in range(3)]
)


@pytest.mark.parametrize("key", GOLDEN_KEYS)
def test_matches_golden(outputs, golden, key):
    gold, got = golden[key], outputs[key]
    assert got.shape == gold.shape, (key, got.shape, gold.shape)
    rel = LOOSE.get(key.split("_", 1)[-1], 1e-4)
    err = float(np.abs(got - gold).max())
    assert err <= rel * max(1.0, float(np.abs(gold).max())), f"{key}: max error {err:.3g}"


def test_initial_state_is_the_official_buffers(outputs, golden):
    init = outputs["init"]
    np.testing.assert_array_equal(init["pred_face_world"], np.broadcast_to(golden["init_face"], (2, 1220, 3)))
    np.testing.assert_array_equal(init["pred_pose"], np.broadcast_to(golden["init_head_pose"], (2, 9)))


def test_points_grid_is_bit_exact(golden):
    np.testing.assert_array_equal(points_grid(18).T[None], golden["points_grid"])


def test_export_of_import_is_bitwise(model, official_sd):
    out = trg_to_state_dict(model)
    assert list(out) == list(official_sd)
    for key, ref in official_sd.items():
        got = out[key]
        assert got.dtype == ref.dtype and got.shape == ref.shape, key
        assert got.flags["C_CONTIGUOUS"], key
        assert got.tobytes() == ref.tobytes(), key


def test_export_matches_manifest(model, manifest):
    out = converter("trg").to_state_dict(model)
    assert [(k, list(v.shape), str(v.dtype)) for k, v in out.items()] == [tuple(m) for m in manifest]


def test_safetensors_round_trip_without_torch(model, official_sd, tmp_path):
    path = tmp_path / "trg.safetensors"
    write_state_dict(path, trg_to_state_dict(model))
    back = read_state_dict(path)
    assert list(back) == list(official_sd)
    for key, ref in official_sd.items():
        assert back[key].dtype == ref.dtype and back[key].shape == ref.shape, key
        assert back[key].tobytes() == ref.tobytes(), key


def test_pth_export_loads_strict_into_torch_reference(model, official_sd, manifest, tmp_path):
    torch = pytest.importorskip("torch")
    from torch_reference_trg import TRGReference

    ref = TRGReference()
    assert [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in ref.state_dict().items()] == [
        tuple(m) for m in manifest
    ]
    path = tmp_path / "trg.pth"
    write_state_dict(path, trg_to_state_dict(model))
    sd = torch.load(path, map_location="cpu", weights_only=True)
    ref.load_state_dict(sd, strict=True)
    loaded = ref.state_dict()
    for key, value in official_sd.items():
        assert loaded[key].numpy().tobytes() == value.tobytes(), key
    assert loaded["feature_extractor.bn1.num_batches_tracked"].shape == ()


def test_import_reports_missing_unexpected_and_shape_errors(model, official_sd):
    bad = dict(official_sd)
    del bad["regressor.1.fc2.bias"]
    bad["regressor.3.fc1.weight"] = np.zeros((2, 2), np.float32)
    bad["deconv_layers.0.weight"] = np.zeros((256, 512, 4, 4), np.float32)
    with pytest.raises(ValueError) as err:
        trg_from_state_dict(bad, model)
    msg = str(err.value)
    assert "1 missing keys: regressor.1.fc2.bias" in msg
    assert "1 unexpected keys: regressor.3.fc1.weight" in msg
    assert "deconv_layers.0.weight: shape [256, 512, 4, 4], expected [512, 256, 4, 4]" in msg


def test_import_from_config_needs_subsample(official_sd):
    with pytest.raises(ValueError, match="subsample"):
        trg_from_state_dict(official_sd, model_config())


def test_arkit_topology(topology):
    sub = topology["subsample"]
    assert sub.shape == (305,) and np.all(np.diff(sub) > 0) and sub.min() >= 0 and sub.max() < 1220
    assert topology["kpt_ind"][:4].tolist() == [57, 376, 208, 905]
    assert topology["triangles"].shape == (2304, 3) and topology["triangles"].max() == 1219


def test_official_init_matches_the_buffers(shared_dir, golden):
    init = load_official_init(shared_dir / "assets" / "trg")
    np.testing.assert_array_equal(init["init_face"], golden["init_face"][0])
    pose = initial_pose(init["init_rotation"], model_config(), init["init_translation"])
    # The official constructor's axis-angle round trip differs from the direct columns by float noise.
    np.testing.assert_allclose(pose, golden["init_head_pose"][0], atol=1e-6)
    cfg = model_config()
    cfg.variant = "t_prediction"
    t0 = initial_pose(init["init_rotation"], cfg, init["init_translation"])[6:]
    assert 0.4 < t0[2] < 0.7  # the pickled translation: OpenCV camera, face in front
