"""TRG weights <-> the official PyTorch `TRG` state dict.

Names and order follow the official `state_dict()` (../shared/specs/trg.md §4; 189 keys for
the default model): the root buffer `points_grid` [1, 2, G^2], `feature_extractor.*`
(torchvision ResNet-18), `deconv_layers.{0,3,6}` (ConvTranspose2d) with BNs `{1,4,7}`,
`laf_extractor.{i}.conv{k}` (Conv1d k=1), `regressor.{i}` (buffers `init_face` [1, V, 3],
`init_head_pose` [1, 9], then fc1, fc2, decshape, decpose) and `predict_68_lmk.0`.

Layouts: Conv2d [O, I, kh, kw] <-> flax [kh, kw, I, O]; ConvTranspose2d [I, O, kh, kw] <->
[kh, kw, O, I] (the same axis permutation); Conv1d [O, I, 1] and
Linear [O, I] <-> [I, O]; BN weight/bias/running_mean/running_var <-> scale/bias/mean/var;
`points_grid` [1, 2, N] <-> (N, 2). Conversions are transposes only, so a round trip is
bit-exact.

The official model keeps a copy of `init_face`/`init_head_pose` in every regressor and reads
only `regressor.0`'s; the JAX model keeps one copy, and the export repeats it. The ARKit
subsample indices are not part of the state dict: they come from the official assets
(`data_pipelines.trg_release.load_arkit_topology`). `num_batches_tracked` is written as 0: torch reads it only when a
BatchNorm has momentum=None, which no layer of TRG has.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from data_pipelines.trg_release import ARKIT_SUBSAMPLE, load_arkit_topology
from jaxhead.interop.state_dict_io import checked_state_dict, list_keys, read_state_dict
from jaxhead.models.trg import TRG

logger = logging.getLogger(__name__)
BN_FIELDS = (("weight", "scale"), ("bias", "bias"), ("running_mean", "mean"), ("running_var", "var"))

# (torch key, variable or None for num_batches_tracked, layout).
Tensor = tuple[str, Any, str]


def _bn(prefix: str, bn: nnx.BatchNorm) -> Iterator[Tensor]:
    for torch_name, flax_name in BN_FIELDS:
        yield f"{prefix}.{torch_name}", getattr(bn, flax_name), "same"
    yield f"{prefix}.num_batches_tracked", None, "count"


def _layer(prefix: str, layer: Any, layout: str) -> Iterator[Tensor]:
    yield f"{prefix}.weight", layer.kernel, layout
    if getattr(layer, "bias", None) is not None:
        yield f"{prefix}.bias", layer.bias, "same"


def _layout(model: TRG) -> Iterator[Tensor]:
    """Every tensor of the official state dict, in its order (a module's own buffers first,
    then its children in registration order), with the variable that holds it."""
    yield "points_grid", model.points_grid, "grid"
    trunk = model.trunk
    yield from _layer("feature_extractor.conv1", trunk.conv1, "conv")
    yield from _bn("feature_extractor.bn1", trunk.bn1)
    for li, layer in enumerate((trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4), start=1):
        for bi, block in enumerate(layer):
            prefix = f"feature_extractor.layer{li}.{bi}"
            yield from _layer(f"{prefix}.conv1", block.conv1, "conv")
            yield from _bn(f"{prefix}.bn1", block.bn1)
            yield from _layer(f"{prefix}.conv2", block.conv2, "conv")
            yield from _bn(f"{prefix}.bn2", block.bn2)
            if block.downsample_conv is not None:
                yield from _layer(f"{prefix}.downsample.0", block.downsample_conv, "conv")
                yield from _bn(f"{prefix}.downsample.1", block.downsample_bn)
    for k, block in enumerate(model.deconv):
        yield from _layer(f"deconv_layers.{3 * k}", block, "conv")
        yield from _bn(f"deconv_layers.{3 * k + 1}", block.bn)
    for i, sampler in enumerate(model.samplers):
        for k, layer in enumerate(sampler.convs):
            yield from _layer(f"laf_extractor.{i}.conv{k}", layer, "conv1d")
    for i, reg in enumerate(model.regressors):
        yield f"regressor.{i}.init_face", model.init_face, "batch"
        yield f"regressor.{i}.init_head_pose", model.init_pose, "batch"
        yield from _layer(f"regressor.{i}.fc1", reg.fc1, "linear")
        yield from _layer(f"regressor.{i}.fc2", reg.fc2, "linear")
        if reg.decshape is not None:
            yield from _layer(f"regressor.{i}.decshape", reg.decshape, "linear")
        yield from _layer(f"regressor.{i}.decpose", reg.decpose, "linear")
    if model.landmark_head is not None:
        yield from _layer("predict_68_lmk.0", model.landmark_head, "conv")


def _to_torch(x: np.ndarray, layout: str) -> np.ndarray:
    if (
        layout == "conv"
    ):  # [kh, kw, I, O] -> [O, I, kh, kw]; transposed convs: [kh, kw, O, I] -> [I, O, kh, kw]
        x = x.transpose(3, 2, 0, 1)
    elif layout == "linear":
        x = x.T
    elif layout == "conv1d":
        x = x.T[:, :, None]
    elif layout == "grid":
        x = x.T[None]
    elif layout == "batch":
        x = x[None]
    return np.array(x, order="C")


def _from_torch(x: np.ndarray, layout: str) -> np.ndarray:
    if layout == "conv":
        return x.transpose(2, 3, 1, 0)
    if layout == "linear":
        return x.T
    if layout == "conv1d":
        return x[:, :, 0].T
    if layout == "grid":
        return x[0].T
    if layout == "batch":
        return x[0]
    return x


def trg_to_state_dict(model: TRG) -> dict[str, np.ndarray]:
    """The official PyTorch state dict (key -> float32 array; num_batches_tracked int64 0-d), in order.

    Only the "official" variant loads into the official `TRG` class; other configurations
    (iterations, widths, baselines) export under the same naming scheme.
    """
    out: dict[str, np.ndarray] = {}
    for key, var, layout in _layout(model):
        out[key] = (
            np.zeros((), np.int64) if var is None else _to_torch(np.asarray(var[...], np.float32), layout)
        )
    return out


def _build(model_or_cfg: TRG | ml_collections.ConfigDict, subsample: np.ndarray | None) -> TRG:
    if isinstance(model_or_cfg, TRG):
        if subsample is not None:
            model_or_cfg.subsample[...] = jnp.asarray(subsample, jnp.int32)
        return model_or_cfg
    if subsample is None:
        raise ValueError(
            "the TRG state dict has no subsample indices: pass `subsample` (e.g. "
            f"load_arkit_topology(trg_assets)['subsample'] from {ARKIT_SUBSAMPLE}) or a model that holds them"
        )
    return TRG(model_or_cfg, rngs=nnx.Rngs(0), subsample=np.asarray(subsample))


def trg_from_state_dict(
    state_dict: Mapping[str, Any],
    model_or_cfg: TRG | ml_collections.ConfigDict,
    *,
    subsample: np.ndarray | None = None,
) -> TRG:
    """Loads an official state dict into a TRG (updated in place, or built from a model config).

    `subsample` (S,) are the vertex ids the sampler projects; they are not in the state
    dict, so building from a config needs them (a given model keeps its own unless passed).
    All keys must match: missing keys, unexpected keys and shape mismatches are reported
    together in one error. The initial face and pose come from `regressor.0` (the copy the
    official model reads).
    """
    model = _build(model_or_cfg, subsample)
    targets = list(_layout(model))
    sd = checked_state_dict(state_dict, targets, _to_torch, "TRG (check config.model against the checkpoint)")
    for name in ("init_face", "init_head_pose"):
        copies = [k for k in sd if k.startswith("regressor.") and k.endswith(f".{name}")]
        if any(not np.array_equal(sd[k], sd[f"regressor.0.{name}"]) for k in copies):
            logger.warning("TRG state dict: the regressors' %s copies differ; using regressor.0's", name)
    loaded = set()
    for key, var, layout in targets:
        if var is None or id(var) in loaded:
            continue
        loaded.add(id(var))  # shared buffers: the first (regressor.0) copy wins
        var[...] = jnp.asarray(_from_torch(sd[key], layout), var[...].dtype)
    return model


def load_torchvision_resnet18(model: TRG, state_dict: Mapping[str, Any]) -> TRG:
    """Loads torchvision ResNet-18 weights (e.g. ImageNet `resnet18-5c106cde.pth`) into the trunk.

    As the official training, `fc.*` is ignored; every other trunk tensor must be present.
    """
    sd = {k: np.asarray(v) for k, v in state_dict.items()}
    prefix = "feature_extractor."
    targets = [(k[len(prefix) :], var, layout) for k, var, layout in _layout(model) if k.startswith(prefix)]
    missing = [k for k, var, _ in targets if var is not None and k not in sd]
    if missing:
        raise ValueError(
            f"not a torchvision ResNet-18 state dict: {len(missing)} missing keys: {list_keys(missing)}"
        )
    for key, var, layout in targets:
        if var is None:
            continue
        want = var[...].shape
        value = _from_torch(sd[key], layout)
        if value.shape != want:
            raise ValueError(
                f"{key}: shape {list(sd[key].shape)} does not fit the trunk (width_multiplier != 1?)"
            )
        var[...] = jnp.asarray(value, var[...].dtype)
    return model


OFFICIAL_CONFIG = ("configs.trg", "arkitface")
to_state_dict = trg_to_state_dict
from_state_dict = trg_from_state_dict


def import_official(path: Path, config: ml_collections.ConfigDict, *, trg_assets: str | None) -> TRG:
    """The official state dict at `path`, with the ARKit subsample ids of a TRG-Release checkout
    (`trg_assets`); points `config.data.trg_assets_dir` at it."""
    if not trg_assets:
        raise ValueError(
            "--trg_assets is required for TRG: the official state dict does not hold the 305 subsampled "
            "vertex ids; point it at a TRG-Release checkout (with data/arkit_subsample.pkl)"
        )
    topology = load_arkit_topology(trg_assets)
    model = trg_from_state_dict(read_state_dict(path), config.model, subsample=topology["subsample"])
    if "data" in config and "trg_assets_dir" in config.data:
        config.data.trg_assets_dir = str(Path(trg_assets).absolute())
    return model
