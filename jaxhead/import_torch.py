r"""Import an official PyTorch checkpoint into a workdir that evaluate/predict can use.

    python -m jaxhead.import_torch --model trg --checkpoint state_dict.bin --workdir RUN \
        --trg_assets TRG_RELEASE_DIR [--config configs/trg.py:arkitface]

Reads `.pth`/`.pt`/`.bin` (torch.load with weights_only=True; needs the torch extra) or
`.safetensors`; TorchScript archives, whatever their suffix, have their tensors read without
compiling or running their code (nothing in a checkpoint is executed). It converts every tensor (missing or unexpected keys and shape mismatches are
reported together), and writes a model-only orbax checkpoint (step 0) with its config.

DAD-3DNet also reads the released TorchScript model (`dad_3dheads.trcd`) and Lightning
checkpoints; the config defaults to `configs/dad3dnet.py:dad3dheads`.

TRG: the state dict does not hold the 305 subsampled vertex ids the sampler projects; they
come from the official ARKit topology of a TRG-Release checkout (`--trg_assets`, the folder
with data/arkit_subsample.pkl). The config defaults to `configs/trg.py:arkitface` (the
official model and the ARKitFace evaluation); `config.model` must describe the checkpoint.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import ml_collections
from absl import app, flags, logging
from flax import nnx
from ml_collections import config_flags

from jaxhead import checkpoint as ckpt
from jaxhead.interop import model_names

# model name -> (config module, its get_config argument) used when --config is not given.
DEFAULT_CONFIGS: dict[str, tuple[str, str | None]] = {
    "trg": ("configs.trg", "arkitface"),
    "dad3dnet": ("configs.dad3dnet", "dad3dheads"),
}


def _import_trg(checkpoint: Path, config: ml_collections.ConfigDict, *, trg_assets: str | None) -> nnx.Module:
    from jaxhead.interop.state_dict_io import read_state_dict
    from data_pipelines.trg_release import load_arkit_topology
    from jaxhead.interop.trg import trg_from_state_dict

    if not trg_assets:
        raise app.UsageError(
            "--trg_assets is required for TRG: the official state dict does not hold the 305 subsampled "
            "vertex ids; point it at a TRG-Release checkout (with data/arkit_subsample.pkl)"
        )
    topology = load_arkit_topology(trg_assets)
    model = trg_from_state_dict(read_state_dict(checkpoint), config.model, subsample=topology["subsample"])
    if "data" in config and "trg_assets_dir" in config.data:
        config.data.trg_assets_dir = str(Path(trg_assets).absolute())
    return model


def _import_dad3dnet(
    checkpoint: Path, config: ml_collections.ConfigDict, *, trg_assets: str | None
) -> nnx.Module:
    """DAD-3DNet: the released TorchScript `.trcd`, a Lightning `.ckpt`, or a plain state dict."""
    from jaxhead.interop.dad3dnet import dad3dnet_from_state_dict, read_dad3dnet_checkpoint

    if trg_assets:
        raise app.UsageError("--trg_assets is for TRG only; DAD-3DNet checkpoints hold every tensor")
    return dad3dnet_from_state_dict(read_dad3dnet_checkpoint(checkpoint), config.model)


# model name -> importer(checkpoint, config, **options) -> model.
IMPORTERS: dict[str, Callable[..., nnx.Module]] = {"trg": _import_trg, "dad3dnet": _import_dad3dnet}


def default_config(model: str) -> ml_collections.ConfigDict:
    module, arg = DEFAULT_CONFIGS[model]
    return importlib.import_module(module).get_config(arg)


def import_checkpoint(
    model: str,
    checkpoint: str | Path,
    workdir: str | Path,
    *,
    config: ml_collections.ConfigDict | None = None,
    trg_assets: str | None = None,
) -> nnx.Module:
    """Converts `checkpoint` and writes it to `workdir` as step 0; returns the model (eval mode)."""
    if model not in IMPORTERS:
        raise ValueError(f"no importer for model {model!r}; known: {sorted(IMPORTERS)}")
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"--checkpoint {checkpoint} does not exist")
    if ckpt.checkpoint_dir(workdir).is_dir() and any(ckpt.checkpoint_dir(workdir).iterdir()):
        raise FileExistsError(
            f"{ckpt.checkpoint_dir(workdir)} already holds checkpoints; choose a new --workdir"
        )
    config = ml_collections.ConfigDict(config.to_dict()) if config is not None else default_config(model)
    if config.model.name != model:
        raise ValueError(f"--config describes model {config.model.name!r}, but --model is {model!r}")
    net = IMPORTERS[model](checkpoint, config, trg_assets=trg_assets)
    net.eval()
    ckpt.save_model(workdir, net, config, step=0)
    logging.info("imported %s from %s into %s", model, checkpoint, ckpt.checkpoint_dir(workdir))
    return net


def define_flags() -> None:
    """The CLI flags; defined on demand so that importing this module defines none."""
    flags.DEFINE_enum("model", None, model_names(), "Which model the checkpoint holds.")
    flags.DEFINE_string(
        "checkpoint",
        None,
        "Official checkpoint: .pth/.pt/.bin or .safetensors (DAD-3DNet also .trcd, .ckpt).",
    )
    flags.DEFINE_string("workdir", None, "Workdir to create (must not hold a checkpoint yet).")
    flags.DEFINE_string(
        "trg_assets",
        None,
        "TRG only: a TRG-Release checkout with data/arkit_subsample.pkl (the ARKit topology).",
    )
    config_flags.DEFINE_config_file(
        "config", None, "Config file[:arg]; default: the model's official-data config."
    )
    flags.mark_flags_as_required(["model", "checkpoint", "workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    import_checkpoint(f.model, f.checkpoint, f.workdir, config=f.config, trg_assets=f.trg_assets)


if __name__ == "__main__":
    define_flags()
    app.run(main)
