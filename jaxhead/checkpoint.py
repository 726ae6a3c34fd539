"""Orbax checkpoints of a workdir: model state, optimizer state, step, data-iterator state, config.

Layout: `WORKDIR/checkpoints/<step>/` with the items
  model      the model's `nnx.State` as a pure dict (parameters, BatchNorm statistics, buffers);
             RNG streams are left out: training derives them from (seed, step)
  opt_state  the optax state (training runs only)
  data_iter  the grain iterator state as JSON (training runs only)
  trainer    host-side training state as JSON, e.g. the plateau schedule (training runs only)
  config     the resolved ml_collections config as JSON
Orbax writes each step to a temporary directory and renames it when complete, so an
interrupted save never looks like a checkpoint. Each finished step also gets `checksums.json`
(`jaxhead.checkpoint_integrity`), verified before any restore.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from jaxhead import checkpoint_integrity as integrity
from jaxhead.checkpoint_integrity import CorruptCheckpointError


class _QuietOrbax(logging.Filter):
    """Orbax logs every save step at INFO; keep its warnings and errors only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or "orbax" not in record.pathname


logging.getLogger("absl").addFilter(_QuietOrbax())

CHECKPOINT_SUBDIR = "checkpoints"
# Everything but RNG state: typed key arrays are not checkpointable, and training reseeds per step.
SAVED_STATE = nnx.Not(nnx.RngState)


def checkpoint_dir(workdir: str | Path) -> Path:
    return Path(workdir).absolute() / CHECKPOINT_SUBDIR


def make_manager(
    workdir: str | Path,
    *,
    keep_last: int = 3,
    best_metric: str | None = None,
    best_mode: str = "min",
    read_only: bool = False,
) -> ocp.CheckpointManager:
    """A manager that keeps exactly the last `keep_last` steps plus the best by `best_metric`.

    Steps saved without metrics count only as recent ones (orbax's BestN would keep them all).
    The metrics are written with each step (orbax writes them only when `best_fn` is set), so a
    resumed run still knows which step is the best.
    """
    policies: list[Any] = [ocp.checkpoint_managers.LatestN(keep_last)]
    best: dict[str, Any] = {}
    if best_metric is not None:
        metric = lambda m: m[best_metric]  # noqa: E731
        best = {"best_fn": metric, "best_mode": best_mode}
        policies.append(
            ocp.checkpoint_managers.BestN(
                get_metric_fn=metric, reverse=best_mode == "min", n=1,
                keep_checkpoints_without_metrics=False,
            )
        )
    options = ocp.CheckpointManagerOptions(
        preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
        read_only=read_only,
        create=not read_only,
        enable_async_checkpointing=False,
        **best,
    )
    return ocp.CheckpointManager(checkpoint_dir(workdir), options=options)


def config_to_json(config: ml_collections.ConfigDict) -> dict[str, Any]:
    return json.loads(config.to_json_best_effort())


class NonFiniteStateError(ValueError):
    """A model state holds NaN or inf."""


def check_finite(state: Any, what: str) -> None:
    """Raises NonFiniteStateError naming the first array of `state` with a NaN or inf."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        x = np.asarray(leaf)
        if np.issubdtype(x.dtype, np.inexact) and not np.all(np.isfinite(x)):
            name = "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
            raise NonFiniteStateError(
                f"{what}: the model's {name} holds {int(np.sum(~np.isfinite(x)))} non-finite values of {x.size}"
            )


def save(
    manager: ocp.CheckpointManager,
    step: int,
    *,
    model: nnx.Module,
    config: ml_collections.ConfigDict,
    opt_state: Any = None,
    data_state: dict[str, Any] | None = None,
    trainer_state: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
) -> None:
    """Saves one step synchronously. `data_state` is the grain iterator's `get_state()`.

    Raises NonFiniteStateError (and writes nothing) when the model holds a non-finite value.
    """
    model_state = nnx.state(model, SAVED_STATE).to_pure_dict()
    check_finite(model_state, f"refusing to save step {step}")
    items: dict[str, Any] = {
        "model": ocp.args.StandardSave(model_state),
        "config": ocp.args.JsonSave(config_to_json(config)),
    }
    if opt_state is not None:
        items["opt_state"] = ocp.args.StandardSave(opt_state)
    if data_state is not None:
        items["data_iter"] = ocp.args.JsonSave(data_state)
    if trainer_state is not None:
        items["trainer"] = ocp.args.JsonSave(trainer_state)
    manager.save(step, args=ocp.args.Composite(**items), metrics=metrics, force=True)
    manager.wait_until_finished()
    if jax.process_index() == 0:
        integrity.write_manifest(Path(manager.directory) / str(step))


def saved_steps(workdir: str | Path) -> list[int]:
    """The finished steps under the workdir's checkpoint directory, oldest first."""
    root = checkpoint_dir(workdir)
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit()) if root.is_dir() else []


def set_aside_corrupt_steps(workdir: str | Path) -> list[str]:
    """Moves every step newer than the newest one that verifies to `WORKDIR/checkpoints_corrupt/`
    (training then resumes from that one); returns a line for each step moved."""
    root, steps = checkpoint_dir(workdir), saved_steps(workdir)
    good, problems = integrity.newest_good_step(root, steps)
    bad = sorted((s for s in steps if good is None or s > good), reverse=True)  # the order of `problems`
    return [f"{line}; moved to {integrity.quarantine(root, s)}" for s, line in zip(bad, problems)]


def read_config(workdir: str | Path, step: int | None = None) -> tuple[ml_collections.ConfigDict, int]:
    """The config stored with a checkpoint (the latest one by default) and its step."""
    manager = make_manager(workdir, read_only=True)
    step = manager.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(
            f"no checkpoint under {checkpoint_dir(workdir)}; train a model there first "
            "(python -m jaxhead.train) or import one (python -m jaxhead.import_torch)"
        )
    raw = manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]
    return ml_collections.ConfigDict(raw), step


def restore_training_state(
    manager: ocp.CheckpointManager, step: int, opt_state: Any
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The optimizer state (shaped like `opt_state`), data-iterator state and trainer state of `step`."""
    restored = manager.restore(
        step,
        args=ocp.args.Composite(
            opt_state=ocp.args.StandardRestore(opt_state),
            data_iter=ocp.args.JsonRestore(),
            trainer=ocp.args.JsonRestore(),
        ),
    )
    return restored["opt_state"], restored["data_iter"], restored["trainer"]


def restore_model_state(
    manager: ocp.CheckpointManager, step: int, model: nnx.Module, shardings: Any = None
) -> None:
    """Restores the model item of `step` into `model` in place (shapes must match)."""
    state = nnx.state(model, SAVED_STATE)
    target = state.to_pure_dict()
    if shardings is not None:
        target = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), target, shardings)
    restored = manager.restore(step, args=ocp.args.Composite(model=ocp.args.StandardRestore(target)))["model"]
    check_finite(restored, f"checkpoint step {step} of {manager.directory} is unusable")
    nnx.replace_by_pure_dict(state, restored)
    nnx.update(model, state)


def load_model(workdir: str | Path, step: int | None = None) -> tuple[nnx.Module, ml_collections.ConfigDict, int]:
    """Builds the model described by a workdir's config and restores its weights.

    Returns (model in eval mode, config, step).
    """
    from jaxhead.models import build_model  # Import here: models import this module's users.

    steps = saved_steps(workdir)
    if step is None and steps:
        step = steps[-1]
    if step is not None:
        try:
            integrity.check_step(checkpoint_dir(workdir) / str(step))
        except CorruptCheckpointError as e:
            others = [s for s in steps if s != step]
            raise CorruptCheckpointError(f"{e}; pass --step with another step: {others}" if others else str(e)) from None
    config, step = read_config(workdir, step)
    model = build_model(config, rngs=nnx.Rngs(0))
    restore_model_state(make_manager(workdir, read_only=True), step, model)
    model.eval()
    return model, config, step


def save_model(workdir: str | Path, model: nnx.Module, config: ml_collections.ConfigDict, step: int = 0) -> None:
    """Writes a model-only checkpoint (e.g. weights imported from PyTorch)."""
    manager = make_manager(workdir)
    save(manager, step, model=model, config=config)
    manager.close()
