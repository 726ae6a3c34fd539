"""The random streams of a run never share a key: the initialisation, each step's augmentation and
each dropout mask draw from independent keys that are a pure function of the seed and the step."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from jaxhead.models import build_model
from jaxhead.training import rng, sharding
from jaxhead.training.steps import make_train_step, split_model
from trg_random_batch import trg_setup  # tests/jaxhead/training

SEED = 3


def _data(key: jax.Array) -> np.ndarray:
    return np.asarray(jax.random.key_data(key))


def test_augmentation_dropout_and_initialisation_keys_never_meet(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, list[bytes]] = {"init": [], "dropout": [], "augment": [], "step": []}
    bucket = ["init"]  # which stream the keys RngStream hands out now belong to
    original_call = nnx.RngStream.__call__

    def recording_call(self: nnx.RngStream) -> jax.Array:
        key = original_call(self)
        # Read at trace time: keys drawn inside the jitted step are recorded as "dropout".
        name = bucket[0]
        jax.debug.callback(lambda k: seen[name].append(np.asarray(k).tobytes()), jax.random.key_data(key))
        return key

    monkeypatch.setattr(nnx.RngStream, "__call__", recording_call)

    config, task, batch = trg_setup(2)
    assert config.model.dropout > 0
    original_augment = task.augment

    def recording_augment(b, key):
        jax.debug.callback(lambda k: seen["augment"].append(np.asarray(k).tobytes()), jax.random.key_data(key))
        return original_augment(b, key)

    monkeypatch.setattr(task, "augment", recording_augment)

    model = build_model(config, rngs=rng.init_rngs(SEED), **task.model_buffers())
    model.train()
    bucket[0] = "dropout"
    mesh = sharding.data_mesh(jax.devices()[:1])
    graphdef, params, rest = split_model(model)
    tx = optax.sgd(1e-3)
    state = sharding.replicate((params, rest, tx.init(params)), mesh)
    step = make_train_step(graphdef, task, tx, mesh)
    for i in range(1, 4):
        key = rng.step_key(SEED, i)
        seen["step"].append(_data(key).tobytes())
        *state, _ = step(*state, sharding.shard_batch(batch, mesh), key)
    jax.effects_barrier()

    assert len(seen["init"]) > 10 and len(seen["augment"]) == 3
    assert len(seen["dropout"]) >= 2 * 3  # TRG's regressor draws two masks per refinement round
    init, dropout, augment, steps = (set(seen[k]) for k in ("init", "dropout", "augment", "step"))
    assert len(dropout) == len(seen["dropout"]) and len(augment) == 3  # no key drawn twice
    assert not augment & dropout, "an augmentation key is also a dropout key"
    assert not augment & init, "an augmentation key is also an initialisation key"
    assert not dropout & init, "a dropout key is also an initialisation key"
    assert not steps & init, "a step's key is also an initialisation key"


def test_keys_are_a_pure_function_of_seed_and_step() -> None:
    # Exact resume depends on it: a resumed run draws the same keys as an uninterrupted one.
    np.testing.assert_array_equal(_data(rng.step_key(SEED, 7)), _data(rng.step_key(SEED, 7)))
    assert not np.array_equal(_data(rng.step_key(SEED, 7)), _data(rng.step_key(SEED, 8)))
    assert not np.array_equal(_data(rng.step_key(SEED, 7)), _data(rng.step_key(SEED + 1, 7)))
    a = [_data(k) for k in rng.split_step_key(rng.step_key(SEED, 7))]
    b = [_data(k) for k in rng.split_step_key(rng.step_key(SEED, 7))]
    np.testing.assert_array_equal(a, b)
