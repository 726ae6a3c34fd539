r"""Train a model: `python -m jaxhead.train --config=configs/trg.py[:variant] --workdir=DIR`.

Override any config value with `--config.a.b=value`. Running again with the same
workdir resumes from its latest checkpoint (model, optimizer, step, data iterator,
schedule state), and the result is identical to an uninterrupted run.

The step is jitted over a `Mesh` of all devices: the batch is sharded on `data`,
the parameters and optimizer state are replicated.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
from absl import app, flags, logging
from flax import nnx
from jax.experimental import multihost_utils
from ml_collections import config_flags

from jaxhead import checkpoint
from jaxhead.config_overrides import parse_flags
from jaxhead.models import build_model
from jaxhead.tasks import make_task
from jaxhead.training import data as train_data
from jaxhead.training import rng, sharding
from jaxhead.training.evaluation import evaluate_split
from jaxhead.training.final_evaluation import final_evaluation
from jaxhead.training.metric_log import MetricLogger, progress_bar
from jaxhead.training.monitor import EarlyStopping
from jaxhead.training.optimizer import current_learning_rate, make_optimizer, make_plateau, with_lr_scale
from jaxhead.training.steps import make_eval_step, make_train_step, split_model
from jaxhead.training.summary import atomic_write, write_training_curves
from jaxhead.training.workdir_lock import WorkdirBusyError, workdir_lock
from jaxhead.training.xla_flags import add_xla_flags


class NonFiniteError(RuntimeError):
    pass


class MetricWindow:
    """The train metrics since the last log, kept on the device: the loop never waits for a step.

    `check` fetches them (one transfer) at a log, evaluation or checkpoint boundary and raises
    NonFiniteError naming the first step whose guard fired (the step left the state unchanged).
    """

    def __init__(self, first_step: int):
        self.first_step = first_step
        self.pending: list[dict[str, jax.Array]] = []  # on the device
        self.fetched: list[dict[str, np.ndarray]] = []  # already checked
        self.t0 = time.perf_counter()

    def add(self, metrics: dict[str, jax.Array]) -> None:
        self.pending.append(metrics)

    def check(self) -> list[dict[str, np.ndarray]]:
        """The window's metrics on the host; only the steps not fetched before are transferred."""
        new, start = jax.device_get(self.pending), self.first_step + len(self.fetched)
        self.pending = []
        for offset, m in enumerate(new):
            if not bool(m["finite"]):
                terms = ", ".join(f"{k}={float(v):.6g}" for k, v in m.items() if k.startswith("loss"))
                raise NonFiniteError(
                    f"non-finite loss, gradient or updated parameters at step {start + offset} ({terms}, "
                    f"grad_norm={float(m['grad_norm']):.6g}); the step was not applied. Stopping without writing "
                    "a checkpoint. Try a lower learning rate or --config.optim.grad_clip_norm."
                )
        self.fetched += new
        return self.fetched

    def summary(self, batch_size: int) -> dict[str, float]:
        """Mean of each metric, and images/s since the last summary; starts a new window."""
        fetched = self.check()
        elapsed = time.perf_counter() - self.t0
        scalars = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0] if k != "finite"}
        scalars["images_per_s"] = len(fetched) * batch_size / elapsed
        self.first_step += len(fetched)
        self.fetched, self.t0 = [], time.perf_counter()
        return scalars


# Config keys a resumed run may change: how long, how often and where it logs, evaluates and
# checkpoints, and how it reads data; anything else would silently mix two experiments.
RESUMABLE_KEYS = (
    "train.num_steps", "train.num_epochs", "train.log_every", "train.eval_every_steps",
    "train.checkpoint_every", "train.keep_checkpoints", "train.xla_cpu_flags",
    "eval.max_batches", "eval.num_pictures", "eval.batch_size", "eval.extra_splits", "data.num_workers", "data.data_dir",
    "data.manual_dir",
)


class ConfigMismatchError(ValueError):
    """The config differs from the one the workdir's checkpoints were trained with."""


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_resumable(saved: dict, config: ml_collections.ConfigDict, workdir: Path) -> None:
    """Raises ConfigMismatchError listing every key outside RESUMABLE_KEYS that differs."""
    old, new = _flatten(saved), _flatten(checkpoint.config_to_json(config))
    differ = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k) and k not in RESUMABLE_KEYS)
    if differ:
        lines = "\n".join(f"  {k}: {old.get(k, '(absent)')!r} in the checkpoint, {new.get(k, '(absent)')!r} now" for k in differ)
        raise ConfigMismatchError(
            f"{workdir} holds a run with a different config; resuming would mix two experiments:\n{lines}\n"
            "Use a new --workdir, or change only " + ", ".join(RESUMABLE_KEYS) + "."
        )


def run_length(config: ml_collections.ConfigDict, num_train: int) -> tuple[int, int, int]:
    """(steps per epoch, total steps, steps between evaluations) for `num_train` examples an epoch
    (the whole training mixture) at the global batch size."""
    steps_per_epoch = max(num_train // config.data.batch_size, 1)
    total_steps = config.train.num_steps or config.train.num_epochs * steps_per_epoch
    return steps_per_epoch, total_steps, config.train.eval_every_steps or steps_per_epoch


def train(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, float]:
    """Runs (or resumes) training under the workdir's lock; returns the final test summary."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sharding.maybe_initialize_distributed()
    if jax.process_index() != 0:  # one lock per job: process 0 holds it
        return _train(config, workdir)
    with workdir_lock(workdir):
        return _train(config, workdir)


def _train(config: ml_collections.ConfigDict, workdir: Path) -> dict[str, float]:
    mesh = sharding.data_mesh()
    local_bs = sharding.local_batch_size(config.data.batch_size, mesh)
    local_eval_bs = sharding.local_batch_size(config.eval.batch_size, mesh, "eval.batch_size")
    logging.info("devices: %d (%s), processes: %d", mesh.devices.size, jax.devices()[0].platform, jax.process_count())

    # Data (built on first use) and the task, which loads the model's assets once.
    data_info = train_data.prepare(config)
    task = make_task(config)
    transform = task.transform()
    steps_per_epoch, total_steps, eval_every = run_length(config, data_info.num_train)

    # Model and optimizer.
    model = build_model(config, rngs=rng.init_rngs(config.seed), **task.model_buffers())
    tx = make_optimizer(config.optim, steps_per_epoch, total_steps)
    plateau = make_plateau(config.optim, task.best_mode)
    stopper = EarlyStopping(config.train.get("early_stopping_patience", 0), task.best_mode)
    model.eval()
    eval_graphdef, _, _ = split_model(model)
    model.train()
    train_graphdef, params, rest = split_model(model)
    opt_state = tx.init(params)
    leader = jax.process_index() == 0

    # Everything opened here is closed on the way out, also when a step or an evaluation raises.
    with contextlib.ExitStack() as stack:
        # Corrupt steps newer than the newest good one are set aside: the run resumes from that one.
        if leader:
            for line in checkpoint.set_aside_corrupt_steps(workdir):
                logging.warning("%s", line)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices("checkpoints verified")
        manager = stack.enter_context(contextlib.closing(checkpoint.make_manager(
            workdir, keep_last=config.train.keep_checkpoints, best_metric=task.best_metric, best_mode=task.best_mode
        )))
        train_iter = stack.enter_context(contextlib.closing(iter(train_data.train_batches(config, local_bs, transform))))

        # Resume from the latest checkpoint of this workdir, if any.
        start_step = manager.latest_step() or 0
        if start_step:
            check_resumable(checkpoint.config_to_json(checkpoint.read_config(workdir, start_step)[0]), config, workdir)
            checkpoint.restore_model_state(manager, start_step, model)
            _, params, rest = split_model(model)
            opt_state, data_state, trainer_state = checkpoint.restore_training_state(manager, start_step, opt_state)
            train_iter.set_state(data_state)
            if plateau is not None:
                plateau.load_state_dict(trainer_state["plateau"])
            stopper.load_state_dict(trainer_state.get("early_stopping"))
            logging.info("resumed from step %d of %s", start_step, workdir)
        if stopper.stopped_at is not None:
            total_steps = stopper.stopped_at
        finished = start_step >= total_steps
        report = workdir / "eval" / config.eval.split
        if finished:
            why = (f"stopped early at step {total_steps} (no better {task.best_metric} in {stopper.patience} "
                   "evaluations)" if stopper.stopped_at is not None else f"trained to step {total_steps}")
            if report.with_suffix(".json").exists():
                logging.info("%s holds a finished run, %s; nothing to do (report: %s.md)", workdir, why, report)
                return json.loads(report.with_suffix(".json").read_text())["model"]
            logging.info("%s holds a finished run, %s; evaluating it only", workdir, why)
        elif leader:
            atomic_write(workdir / "config.json", json.dumps(checkpoint.config_to_json(config), indent=2))

        params, rest, opt_state = sharding.replicate((params, rest, opt_state), mesh)
        train_step = make_train_step(train_graphdef, task, tx, mesh, config.train.compute_dtype)
        eval_step = make_eval_step(eval_graphdef, task, mesh)
        logger = stack.enter_context(contextlib.closing(MetricLogger(workdir, start_step)))
        monitored = config.eval.max_batches or None  # global batches every model-selection value comes from

        def periodic_eval(step: int) -> dict[str, float]:
            with train_data.eval_batches(config, local_eval_bs, transform) as batches:
                summary = evaluate_split(
                    eval_step, params, rest, batches, task, mesh, local_eval_bs, max_batches=monitored
                )["summary"]
            logger.write(step, config.eval.split, summary)
            return summary

        def save(step: int, metrics: dict[str, float] | None, data_state: dict) -> None:
            checkpoint.save(
                manager, step, model=nnx.merge(train_graphdef, params, rest), config=config, opt_state=opt_state,
                data_state=data_state, metrics=metrics,
                trainer_state={"plateau": plateau.state_dict() if plateau else None,
                               "early_stopping": stopper.state_dict()},
            )

        def fetch() -> tuple[dict[str, jax.Array], dict]:
            """The next batch, already on its devices, and the iterator state just after it."""
            return sharding.shard_batch(next(train_iter), mesh), train_iter.get_state()

        bar = stack.enter_context(contextlib.closing(
            progress_bar(total_steps, start_step, desc=f"train {config.model.name}")
        ))
        window = MetricWindow(start_step + 1)
        data_state = train_iter.get_state()
        if not finished:
            batch, data_state = fetch()
        for step in range(start_step + 1, total_steps + 1):
            params, rest, opt_state, metrics = train_step(params, rest, opt_state, batch, rng.step_key(config.seed, step))
            window.add(metrics)
            # Two batches in flight: the next one is read and sent while this step runs.
            if step < total_steps:
                next_batch, next_state = fetch()
            bar.update(1)

            if step % config.train.log_every == 0 or step == total_steps:
                scalars = window.summary(config.data.batch_size)
                scalars["lr"] = current_learning_rate(opt_state)
                logger.write(step, "train", scalars)
                bar.set_postfix(loss=f"{scalars['loss']:.4f}", lr=f"{scalars['lr']:.2e}")

            eval_metrics = None
            if step % eval_every == 0 and step != total_steps:
                window.check()
                eval_metrics = periodic_eval(step)
                if plateau is not None:
                    opt_state = with_lr_scale(opt_state, plateau.step(eval_metrics[task.best_metric]))
                if stopper.update(step, eval_metrics[task.best_metric]):
                    logging.info("early stopping at step %d: no better %s in %d evaluations",
                                 step, task.best_metric, stopper.patience)
                    total_steps = step
                    break
            if step % config.train.checkpoint_every == 0 and step != total_steps:
                window.check()
                save(step, eval_metrics, data_state)
            if step < total_steps:
                batch, data_state = next_batch, next_state
        bar.close()
        window.check()

        # Final evaluation on the whole split. The checkpoint's metric for model selection is
        # the monitored subset's, comparable with every periodic evaluation's.
        result = final_evaluation(
            config, task, transform, eval_step, params, rest, mesh, local_eval_bs, split=config.eval.split,
            fit_baseline=True, report=report, picture=workdir / "predictions.png",
        )
        for split in config.eval.extra_splits:  # with the baseline fitted above
            final_evaluation(
                config, task, transform, eval_step, params, rest, mesh, local_eval_bs, split=split,
                fit_baseline=False, report=workdir / "eval" / split, picture=workdir / f"predictions_{split}.png",
            )
        if not finished:
            if stopper.stopped_at != total_steps:  # an early stop logged this step's evaluation already
                logger.write(total_steps, config.eval.split, result["monitor"])
            if monitored:
                logger.write(total_steps, f"{config.eval.split}_full", result["summary"])
        if manager.latest_step() != total_steps:
            save(total_steps, result["monitor"], data_state)
    if leader:
        write_training_curves(workdir)
    logging.info("final test metrics: %s", result["summary"])
    return result["summary"]


def define_flags() -> None:
    """The CLI flags; defined on demand so that importing this module defines none."""
    config_flags.DEFINE_config_file("config", None, "Training config file, e.g. configs/trg.py:cpu.", lock_config=True)
    flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and pictures.")
    flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    add_xla_flags(flags.FLAGS.config.train.get("xla_cpu_flags", ""))
    jax.config.update("jax_default_matmul_precision", flags.FLAGS.config.train.matmul_precision)
    try:
        train(flags.FLAGS.config, flags.FLAGS.workdir)
    except (NonFiniteError, ConfigMismatchError, WorkdirBusyError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=parse_flags)
