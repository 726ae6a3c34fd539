"""DAD-3DNet against the official model: golden outputs, state-dict format, checkpoint readers.

Weights come from ../shared/reference/official_weights.py (seed 0), the recipe the goldens
were made with; the goldens are NCHW, the port NHWC.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxhead.interop import converter
from jaxhead.interop.dad3dnet import (
    dad3dnet_from_state_dict,
    dad3dnet_to_state_dict,
    read_dad3dnet_checkpoint,
)
from jaxhead.interop.state_dict_io import write_state_dict
from jaxhead.models.dad3dnet import DAD3DNet, model_config

import reference_files  # tests/jaxhead

GOLDEN_OUTPUTS = (
    "heatmap_logits",
    "params_3dmm",
    "landmarks",
    "enc_stage3",
    "bifpn_p3_out",
    "bifpn_p5_out",
    "fusion_out",
    "enc_stage4",
    "pooled_stage4",
    "shape_head_raw",
    "pose_head_raw",
    "landmarks_head_raw",
)


@pytest.fixture(scope="module")
def manifest(shared_dir: Path) -> list[tuple[str, list[int], str]]:
    return reference_files.manifest(shared_dir, "dad3dnet")


@pytest.fixture(scope="module")
def official_sd(shared_dir: Path) -> dict[str, np.ndarray]:
    return reference_files.official_state_dict(shared_dir, "dad3dnet")


@pytest.fixture(scope="module")
def model(official_sd) -> DAD3DNet:
    m = dad3dnet_from_state_dict(official_sd, model_config())
    m.eval()
    return m


@pytest.fixture(scope="module")
def golden(shared_dir: Path) -> dict[str, np.ndarray]:
    with np.load(shared_dir / "reference" / "dad3dnet_golden.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def outputs(model, golden) -> dict[str, np.ndarray]:
    x = jnp.asarray(golden["x_nchw"].transpose(0, 2, 3, 1))
    with jax.default_matmul_precision("highest"):
        out = nnx.jit(lambda m, img: m(img))(model, x)
    return {k: np.asarray(v) for k, v in out.items()}


def _nchw(a: np.ndarray) -> np.ndarray:
    return a.transpose(0, 3, 1, 2) if a.ndim == 4 else a


@pytest.mark.parametrize("name", GOLDEN_OUTPUTS)
def test_golden_parity(outputs, golden, name):
    out = _nchw(outputs[name])
    if name == "landmarks_head_raw":
        # The official forward applies ReLU in place on a view of this tensor, so the stored
        # "raw" head output is already rectified; ours is the genuine pre-ReLU value.
        out = np.maximum(out, 0.0)
    gold = golden[name]
    assert out.shape == gold.shape
    err = np.abs(out - gold).max()
    assert err <= 1e-4 * np.abs(gold).max(), f"{name}: max error {err:.3g}, absmax {np.abs(gold).max():.3g}"


def test_landmarks_are_the_rectified_head(outputs):
    raw = outputs["landmarks_head_raw"].reshape(-1, 68, 2)
    np.testing.assert_array_equal(outputs["landmarks"], np.maximum(raw, 0.0))
    assert (raw < 0).any()


def test_parameter_count(model):
    n = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert n == 32_945_617  # spec §3.6 and the manifest


def test_export_matches_manifest(model, manifest):
    sd = dad3dnet_to_state_dict(model)
    assert list(sd) == [k for k, _, _ in manifest]
    for key, shape, dtype in manifest:
        assert list(sd[key].shape) == shape and sd[key].dtype == np.dtype(dtype), key
    counts = [k for k in sd if k.endswith("num_batches_tracked")]
    assert len(counts) == 70 and all(sd[k].shape == () and sd[k] == 0 for k in counts)


def test_round_trip_is_bitwise(official_sd, model):
    back = dad3dnet_to_state_dict(model)
    assert list(back) == list(official_sd)
    for k, v in official_sd.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v), k


def test_registry_converter(model, official_sd):
    conv = converter("dad3dnet")
    sd = conv.to_state_dict(model)
    assert np.array_equal(sd["head.heatmap.weight"], official_sd["head.heatmap.weight"])


def test_import_reports_every_problem(official_sd):
    sd = dict(official_sd)
    del sd["bifpn.bifpn.1.w2"]
    sd["head.extra"] = np.zeros(3, np.float32)
    sd["fusion_layer.conv1x1.weight"] = np.zeros((1024, 1347, 1, 1), np.float32)
    with pytest.raises(ValueError) as err:
        dad3dnet_from_state_dict(sd, model_config())
    msg = str(err.value)
    assert "bifpn.bifpn.1.w2" in msg and "head.extra" in msg and "fusion_layer.conv1x1.weight" in msg
    assert "[1024, 1348, 1, 1]" in msg


def test_inception_fusion_has_no_official_format():
    cfg = model_config()
    cfg.fusion = "inception"
    cfg.width_multiplier = 0.125
    cfg.stage_depths = (1, 1, 1, 1)
    cfg.num_filters = 16
    with pytest.raises(ValueError, match="inception"):
        dad3dnet_to_state_dict(nnx.eval_shape(lambda: DAD3DNet(cfg, rngs=nnx.Rngs(0))))


def test_safetensors_round_trip(tmp_path, model, official_sd):
    path = tmp_path / "dad.safetensors"
    write_state_dict(path, dad3dnet_to_state_dict(model))
    read = read_dad3dnet_checkpoint(path)
    assert list(read) == list(official_sd)
    assert all(np.array_equal(read[k], official_sd[k]) for k in official_sd)


# ---- PyTorch checkpoint forms (skipped without torch) ----


@pytest.fixture(scope="module")
def torch_reference(official_sd):
    torch = pytest.importorskip("torch")
    from torch_reference_dad3dnet import ReferenceDAD3DNet

    net = ReferenceDAD3DNet().eval()
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in official_sd.items()}, strict=True)
    return net


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return list(a) == list(b) and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


def test_reference_tree_reproduces_golden(torch_reference, golden):
    import torch

    with torch.no_grad():
        logits, params, lmk = torch_reference(torch.from_numpy(golden["x_nchw"]))
    for name, out in (("heatmap_logits", logits), ("params_3dmm", params), ("landmarks", lmk)):
        gold = golden[name]
        assert np.abs(out.numpy() - gold).max() <= 1e-4 * np.abs(gold).max(), name


def test_exported_pth_loads_strict(tmp_path, model, torch_reference, official_sd):
    import torch

    path = tmp_path / "dad.pth"
    write_state_dict(path, dad3dnet_to_state_dict(model))
    sd = torch.load(path, weights_only=True)
    torch_reference.load_state_dict(sd, strict=True)  # raises on any key or shape mismatch
    assert _same(read_dad3dnet_checkpoint(path), official_sd)


class HyperParams:
    """Stands in for the config objects Lightning pickles next to the weights."""

    def __init__(self, lr: float):
        self.lr = lr


def test_lightning_checkpoint(tmp_path, torch_reference, official_sd):
    import torch

    flame = {
        "head_mesh.flame.v_template": torch.zeros(5, 3),
        "criterion.criterions.1.head_mesh.flame.shapedirs": torch.zeros(2),
    }
    state = {f"model.{k}": v for k, v in torch_reference.state_dict().items()} | flame
    path = tmp_path / "epoch=3.ckpt"
    torch.save({"epoch": 3, "state_dict": state, "hyper_parameters": {"cfg": HyperParams(1e-3)}}, path)
    sd = read_dad3dnet_checkpoint(path)
    assert _same(sd, official_sd)
    m = dad3dnet_from_state_dict(sd, model_config())
    assert _same(dad3dnet_to_state_dict(m), official_sd)


def test_torchscript_checkpoint(tmp_path, torch_reference, official_sd):
    import torch

    traced = torch.jit.trace(torch_reference, torch.zeros(1, 3, 256, 256), strict=False, check_trace=False)
    path = tmp_path / "dad_3dheads.trcd"
    traced.save(str(path))
    assert _same(read_dad3dnet_checkpoint(path), official_sd)


def test_import_cli_writes_a_loadable_workdir(tmp_path, official_sd):
    import ml_collections

    from jaxhead import checkpoint
    from jaxhead.import_torch import import_checkpoint

    path = tmp_path / "official.safetensors"
    write_state_dict(path, official_sd)
    config = ml_collections.ConfigDict(dict(model=model_config()))
    import_checkpoint("dad3dnet", path, tmp_path / "run", config=config)
    restored, restored_config, step = checkpoint.load_model(tmp_path / "run")
    assert step == 0 and restored_config.model.name == "dad3dnet"
    assert _same(dad3dnet_to_state_dict(restored), official_sd)
