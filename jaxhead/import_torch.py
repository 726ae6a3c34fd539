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
import sys
from pathlib import Path

import ml_collections
from absl import app, flags, logging
from flax import nnx
from ml_collections import config_flags

from jaxhead import checkpoint as ckpt
from jaxhead.interop import converter

def default_config(model: str) -> ml_collections.ConfigDict:
    module, arg = converter(model).official_config
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
    convert = converter(model)
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
    net = convert.import_official(checkpoint, config, trg_assets=trg_assets)
    net.eval()
    ckpt.save_model(workdir, net, config, step=0)
    logging.info("imported %s from %s into %s", model, checkpoint, ckpt.checkpoint_dir(workdir))
    return net


def define_flags() -> None:
    """The CLI flags; defined on demand so that importing this module defines none."""
    flags.DEFINE_string("model", None, "Which model the checkpoint holds (config.model.name: trg, dad3dnet).")
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
    try:
        import_checkpoint(f.model, f.checkpoint, f.workdir, config=f.config, trg_assets=f.trg_assets)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
