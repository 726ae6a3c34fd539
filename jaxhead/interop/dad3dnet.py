"""DAD-3DNet weights <-> the official PyTorch `FlameRegression` state dict.

Names and order follow the official `state_dict()` (../shared/specs/dad3dnet.md §4; 465 keys):
`encoder.model.*` (pytorchcv ResNet-50), `bifpn.*`, `head.heatmap`, `fusion_layer.conv1x1`,
`{shape,pose,landmarks}.logit_image.{0,3}`. Layouts: Conv2d [O, I/groups, kh, kw] <-> flax
[kh, kw, I/groups, O]; Linear [out, in] <-> [in, out]; BatchNorm weight/bias/running_mean/
running_var <-> scale/bias/mean/var. Conversions are transposes only, so a round trip is
bit-exact. `num_batches_tracked` is written as 0: torch reads it only when a BatchNorm has
momentum=None, which no layer here has, so the JAX model does not keep it.

Readers for the checkpoint forms the official code produces: the released TorchScript
`dad_3dheads.trcd` (its tensors, read without running its code), Lightning checkpoints (a
`state_dict` whose model entries carry a `model.` prefix, next to FLAME buffers of the loss
modules), and plain `.pth` / `.safetensors` state dicts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from jaxhead.interop.state_dict_io import SAFETENSORS_SUFFIX, checked_state_dict, read_state_dict
from jaxhead.interop.torchscript_archive import is_torchscript_archive, read_torchscript_state_dict
from jaxhead.models.dad3dnet import DAD3DNet, GatedFusion

BN_FIELDS = (("weight", "scale"), ("bias", "bias"), ("running_mean", "mean"), ("running_var", "var"))
LIGHTNING_PREFIX = "model."
TORCHSCRIPT_SUFFIX = ".trcd"

# (torch key prefix, kind, module) with kind in {"conv", "bn", "linear", "param"}.
Entry = tuple[str, str, Any]


def _conv_block(prefix: str, block: Any) -> Iterator[Entry]:
    yield f"{prefix}.conv", "conv", block.conv
    yield f"{prefix}.bn", "bn", block.bn


def _layout(model: DAD3DNet) -> Iterator[Entry]:
    """Every tensor of the official state dict, in its order, with the module that holds it."""
    if not isinstance(model.fusion, GatedFusion):
        raise ValueError(
            "only the official gated fusion has an official state dict; this model uses "
            f"{type(model.fusion).__name__} (model.fusion='inception')"
        )
    enc = model.encoder
    yield from _conv_block("encoder.model.init_block.conv", enc.init_block.conv)
    for s, stage in enumerate((enc.stage1, enc.stage2, enc.stage3, enc.stage4), start=1):
        for u, unit in enumerate(stage, start=1):
            prefix = f"encoder.model.stage{s}.unit{u}"
            for c in ("conv1", "conv2", "conv3"):
                yield from _conv_block(f"{prefix}.body.{c}", getattr(unit.body, c))
            if unit.identity_conv is not None:
                yield from _conv_block(f"{prefix}.identity_conv", unit.identity_conv)
    fpn = model.bifpn
    for name in ("p3", "p4", "p5", "p6"):
        yield f"bifpn.{name}", "conv", getattr(fpn, name)
    yield "bifpn.p7.conv", "conv", fpn.p7.conv
    yield "bifpn.p7.bn", "bn", fpn.p7.bn
    for i, block in enumerate(fpn.bifpn):
        yield f"bifpn.bifpn.{i}.w1", "param", block.w1
        yield f"bifpn.bifpn.{i}.w2", "param", block.w2
        for name in ("p3_td", "p4_td", "p5_td", "p6_td", "p4_out", "p5_out", "p6_out", "p7_out"):
            unit = getattr(block, name)
            yield f"bifpn.bifpn.{i}.{name}.depthwise", "conv", unit.depthwise
            yield f"bifpn.bifpn.{i}.{name}.pointwise", "conv", unit.pointwise
            yield f"bifpn.bifpn.{i}.{name}.bn", "bn", unit.bn
    yield "head.heatmap", "conv", model.heatmap
    yield "fusion_layer.conv1x1", "conv", model.fusion.conv1x1
    for head_name, head in (
        ("shape", model.shape_head),
        ("pose", model.pose_head),
        ("landmarks", model.landmarks_head),
    ):
        yield f"{head_name}.logit_image.0", "linear", head.fc1
        yield f"{head_name}.logit_image.3", "linear", head.fc2


def _tensors(prefix: str, kind: str, module: Any) -> Iterator[tuple[str, nnx.Variable | None, str]]:
    """(torch key, variable or None for num_batches_tracked, layout) for one entry."""
    if kind == "param":
        yield prefix, module, "same"
    elif kind == "bn":
        for torch_name, flax_name in BN_FIELDS:
            yield f"{prefix}.{torch_name}", getattr(module, flax_name), "same"
        yield f"{prefix}.num_batches_tracked", None, "count"
    else:
        yield f"{prefix}.weight", module.kernel, kind
        if module.bias is not None:
            yield f"{prefix}.bias", module.bias, "same"


def _to_torch(x: np.ndarray, layout: str) -> np.ndarray:
    if layout == "conv":  # [kh, kw, I, O] -> [O, I, kh, kw]
        return np.ascontiguousarray(x.transpose(3, 2, 0, 1))
    if layout == "linear":
        return np.ascontiguousarray(x.T)
    return x


def _from_torch(x: np.ndarray, layout: str) -> np.ndarray:
    if layout == "conv":
        return x.transpose(2, 3, 1, 0)
    if layout == "linear":
        return x.T
    return x


def dad3dnet_to_state_dict(model: DAD3DNet) -> dict[str, np.ndarray]:
    """The official PyTorch state dict (key -> float32 array, num_batches_tracked int64 0-d), in order."""
    out: dict[str, np.ndarray] = {}
    for entry in _layout(model):
        for key, var, layout in _tensors(*entry):
            if var is None:
                out[key] = np.zeros((), np.int64)
            else:
                out[key] = _to_torch(np.asarray(var[...], np.float32), layout)
    return out


def _build(model_or_cfg: DAD3DNet | ml_collections.ConfigDict) -> DAD3DNet:
    if isinstance(model_or_cfg, DAD3DNet):
        return model_or_cfg
    return DAD3DNet(model_or_cfg, rngs=nnx.Rngs(0))


def dad3dnet_from_state_dict(
    state_dict: Mapping[str, Any], model_or_cfg: DAD3DNet | ml_collections.ConfigDict
) -> DAD3DNet:
    """Loads an official state dict into a DAD3DNet (updated in place, or built from a model config).

    All keys must match: missing keys, unexpected keys and shape mismatches are reported
    together in one error.
    """
    model = _build(model_or_cfg)
    targets = [t for entry in _layout(model) for t in _tensors(*entry)]
    sd = checked_state_dict(state_dict, targets, _to_torch, "DAD-3DNet")
    for key, var, layout in targets:
        if var is not None:
            var[...] = jnp.asarray(_from_torch(sd[key], layout), var[...].dtype)
    return model


def _tensor_dict(obj: Mapping[str, Any], where: str) -> dict[str, np.ndarray]:
    import torch

    out = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{where}: entry {key!r} is a {type(value).__name__}, not a tensor")
        out[str(key)] = value.detach().cpu().numpy()
    return out


def _load_torch_pickle(path: Path) -> Any:
    """torch.load with weights_only=True; classes a Lightning checkpoint pickles next to its
    tensors (hyper-parameter containers and the like) load as inert placeholders."""
    try:
        import torch
    except ImportError as err:
        raise ImportError(f"reading {path} needs PyTorch: pip install 'jaxhead[torch]'") from err

    class Placeholder:
        def __init__(self, *args: Any, **kwargs: Any):
            pass

        def __setstate__(self, state: Any) -> None:
            pass

    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    with torch.serialization.safe_globals([(Placeholder, name) for name in unsafe]):
        return torch.load(str(path), map_location="cpu", weights_only=True)


def strip_lightning(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Keeps the `model.` entries of a Lightning state dict, without the prefix.

    Drops everything else (FLAME buffers `head_mesh.flame.*`, `criterion.*` of the losses).
    """
    return {k[len(LIGHTNING_PREFIX) :]: v for k, v in state_dict.items() if k.startswith(LIGHTNING_PREFIX)}


def read_dad3dnet_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """The official-format state dict of a DAD-3DNet checkpoint file.

    Accepts the released TorchScript model (`.trcd`, or any TorchScript archive: its tensors
    are read without running its code), a Lightning checkpoint (a dict with `state_dict`), a
    plain `.pth`/`.pt`/`.bin` state dict, or a `.safetensors` file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DAD-3DNet checkpoint {path} does not exist")
    if path.suffix == SAFETENSORS_SUFFIX:
        return read_state_dict(path)
    if is_torchscript_archive(path):
        return read_torchscript_state_dict(path)
    if path.suffix == TORCHSCRIPT_SUFFIX:
        raise ValueError(f"{path}: not a TorchScript archive (expected a zip with <root>/data.pkl and <root>/code/)")
    obj = _load_torch_pickle(path)
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        sd = strip_lightning(obj["state_dict"])
        if not sd:
            raise ValueError(f"{path}: Lightning checkpoint has no `model.` entries in its state_dict")
        return _tensor_dict(sd, str(path))
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a state dict or a Lightning checkpoint, got {type(obj).__name__}")
    return _tensor_dict(obj, str(path))


OFFICIAL_CONFIG = ("configs.dad3dnet", "dad3dheads")
to_state_dict = dad3dnet_to_state_dict
from_state_dict = dad3dnet_from_state_dict


def import_official(path: Path, config: ml_collections.ConfigDict, *, trg_assets: str | None) -> DAD3DNet:
    """The released TorchScript `.trcd`, a Lightning `.ckpt`, or a plain state dict at `path`."""
    if trg_assets:
        raise ValueError("--trg_assets is for TRG only; DAD-3DNet checkpoints hold every tensor")
    return dad3dnet_from_state_dict(read_dad3dnet_checkpoint(path), config.model)
