r"""Evaluate a workdir's model: `python -m jaxhead.evaluate --workdir=DIR [--dataset NAME] [--split S]`.

Writes `DIR/eval/<dataset>_<split>.md` and `.json` (the metrics table, with the
mean-prediction baseline) and a picture of predictions. Works on workdirs made by
`jaxhead.train` and by `jaxhead.import_torch`. On ARKitFace and BIWI the TRG metrics
follow the paper's protocol (trg.md §10).
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import ml_collections
from absl import app, flags, logging

from jaxhead import checkpoint
from jaxhead.tasks import make_task
from jaxhead.training import data as train_data
from jaxhead.training import sharding
from jaxhead.training.final_evaluation import final_evaluation
from jaxhead.training.steps import make_eval_step, split_model


def evaluate(
    workdir: str | Path,
    *,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | None = None,
    builder_config: str | None = None,
    batch_size: int | None = None,
    step: int | None = None,
) -> dict:
    workdir = Path(workdir)
    model, config, step = checkpoint.load_model(workdir, step)
    config = ml_collections.ConfigDict(config.to_dict())
    if dataset:
        config.data.dataset = dataset
        config.data.builder_config = builder_config or train_data.default_builder_config(dataset)
    elif builder_config:
        config.data.builder_config = builder_config
    if data_dir:
        config.data.data_dir = data_dir
    if batch_size:
        config.eval.batch_size = batch_size

    mesh = sharding.data_mesh()
    local_bs = sharding.local_batch_size(config.eval.batch_size, mesh, "eval.batch_size")
    data_info = train_data.prepare(config, splits=(split,))
    task = make_task(config)
    transform = task.transform()
    graphdef, params, rest = split_model(model)
    params, rest = sharding.replicate((params, rest), mesh)
    eval_step = make_eval_step(graphdef, task, mesh)
    name = f"{config.data.dataset}_{split}"
    result = final_evaluation(
        config, task, transform, eval_step, params, rest, mesh, local_bs, split=split,
        fit_baseline="train" in data_info.num_examples, report=workdir / "eval" / name,
        picture=workdir / "eval" / f"{name}.png",
    )
    if jax.process_index() == 0:
        print((workdir / "eval" / f"{name}.md").read_text())
    logging.info("evaluated step %d of %s on %s", step, workdir, name)
    return result


def define_flags() -> None:
    """The CLI flags; defined on demand so that importing this module defines none."""
    flags.DEFINE_string("workdir", None, "A workdir with a checkpoint (from jaxhead.train or jaxhead.import_torch).")
    flags.DEFINE_string("dataset", None, "Dataset to evaluate on (default: the one the model was trained on).")
    flags.DEFINE_string("split", "test", "Split to evaluate.")
    flags.DEFINE_string("data_dir", None, "Where the TFDS datasets live (default: the config's).")
    flags.DEFINE_string("builder_config", None, "TFDS builder config of --dataset (default: the config's).")
    flags.DEFINE_integer("batch_size", None, "Global evaluation batch size (default: the config's).")
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
    flags.mark_flag_as_required("workdir")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    jax.config.update("jax_default_matmul_precision", "highest")
    try:
        evaluate(
            f.workdir, dataset=f.dataset, split=f.split, data_dir=f.data_dir, builder_config=f.builder_config,
            batch_size=f.batch_size, step=f.step,
        )
    except (FileNotFoundError, checkpoint.NonFiniteStateError, checkpoint.CorruptCheckpointError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
