"""The non-finite guard: a step whose loss, gradient or updated state is not finite changes nothing
and is recorded on the device; the loop stops at the next boundary naming the first bad step and
writes no checkpoint after it; a checkpoint holding NaN is neither saved nor loaded."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from configs import trg as trg_configs
from jaxhead import checkpoint
from jaxhead.models import build_model
from jaxhead.training import sharding
from jaxhead.training.steps import make_train_step, split_model
from trg_random_batch import trg_setup  # tests/jaxhead/training


def _host(x) -> np.ndarray:
    return np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)


def _step_with(tx: optax.GradientTransformation):
    config, task, batch = trg_setup(2)
    mesh = sharding.data_mesh(jax.devices()[:1])
    model = build_model(config, rngs=nnx.Rngs(0), **task.model_buffers())
    model.train()
    graphdef, params, rest = split_model(model)
    opt_state = tx.init(params)
    before = jax.tree.map(_host, (params, rest, opt_state))
    state = sharding.replicate((params, rest, opt_state), mesh)
    out = make_train_step(graphdef, task, tx, mesh)(*state, sharding.shard_batch(batch, mesh), jax.random.key(0))
    return before, out


@pytest.mark.parametrize(
    "tx, finite",
    [(optax.sgd(1e-3), True), (optax.adam(1e39), False), (optax.sgd(float("nan")), False)],
    ids=["ordinary", "overflowing-update", "nan-update"],
)
def test_a_bad_step_leaves_the_state_unchanged(tx, finite: bool) -> None:
    before, (params, rest, opt_state, metrics) = _step_with(tx)
    assert bool(metrics["finite"]) == finite
    # The loss itself is finite at this first step: only the updated parameters overflow.
    assert np.isfinite(float(metrics["loss"]))
    after = jax.tree.map(_host, (params, rest, opt_state))
    same = [np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after))]
    assert all(same) != finite  # a good step changes the state, a bad one leaves all of it


def test_training_stops_naming_the_first_bad_step(synthetic_tiny: Path, tmp_path: Path) -> None:
    from jaxhead.train import NonFiniteError, train

    config = trg_configs.get_config("smoke")
    config.data.data_dir = str(synthetic_tiny)
    config.train.update(num_steps=6, log_every=4, eval_every_steps=100, checkpoint_every=2)
    config.optim.learning_rate = 1e39
    with pytest.raises(NonFiniteError, match="at step 1 "):
        train(config, tmp_path / "run")
    assert checkpoint.make_manager(tmp_path / "run", read_only=True).all_steps() == []


def test_a_checkpoint_with_nan_is_neither_saved_nor_loaded(tmp_path: Path, monkeypatch) -> None:
    config, task, _ = trg_setup(1)
    model = build_model(config, rngs=nnx.Rngs(0), **task.model_buffers())
    param = next(v for _, v in nnx.iter_graph(model) if isinstance(v, nnx.Param) and v[...].ndim == 2)
    param[...] = param[...].at[0, 0].set(np.nan)
    with pytest.raises(checkpoint.NonFiniteStateError, match="refusing to save step 0: .* holds 1 non-finite"):
        checkpoint.save_model(tmp_path / "run", model, config)
    assert checkpoint.make_manager(tmp_path / "run", read_only=True).all_steps() == []

    # A NaN that reached the disk anyway (an older version, a corrupted file) is refused on load.
    with monkeypatch.context() as m:
        m.setattr(checkpoint, "check_finite", lambda state, what: None)
        checkpoint.save_model(tmp_path / "run", model, config)
    with pytest.raises(checkpoint.NonFiniteStateError, match="checkpoint step 0 of .* is unusable"):
        checkpoint.load_model(tmp_path / "run")
