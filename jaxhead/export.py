r"""Export a workdir's model as the official PyTorch state dict.

    python -m jaxhead.export --workdir RUN --out model.pth|model.safetensors [--step N]

`.safetensors` needs no torch; `.pth`/`.pt`/`.bin` need the torch extra. The file holds
every key of the official `state_dict()` in its order, buffers and `num_batches_tracked`
included, so the official model loads it with `strict=True`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from absl import app, flags, logging

from jaxhead import checkpoint
from jaxhead.interop import converter
from jaxhead.interop.state_dict_io import check_format, write_state_dict


def export_checkpoint(workdir: str | Path, out: str | Path, step: int | None = None) -> dict:
    """Writes the official state dict of `workdir`'s model (step `step`, default latest) to `out`.

    Returns the state dict that was written.
    """
    check_format(out)
    model, config, step = checkpoint.load_model(workdir, step)
    state_dict = converter(config.model.name).to_state_dict(model)
    write_state_dict(out, state_dict)
    logging.info("exported %s step %d (%d tensors) to %s", config.model.name, step, len(state_dict), out)
    return state_dict


def define_flags() -> None:
    """The CLI flags; defined on demand so that importing this module defines none."""
    flags.DEFINE_string(
        "workdir", None, "Workdir with a checkpoint (from jaxhead.train or jaxhead.import_torch)."
    )
    flags.DEFINE_string("out", None, "Output file: .pth/.pt/.bin (torch) or .safetensors.")
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
    flags.mark_flags_as_required(["workdir", "out"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    try:
        export_checkpoint(f.workdir, f.out, f.step)
    except (FileNotFoundError, checkpoint.NonFiniteStateError, checkpoint.CorruptCheckpointError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
