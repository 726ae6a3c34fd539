"""Run in a fresh process with 8 fake CPU devices: one TRG train step on a 1-device mesh and
on an 8-device mesh must give the same loss, gradients, BatchNorm statistics and parameters.

Prints one JSON line with the max differences; the pytest wrapper asserts on them.
"""

from __future__ import annotations

import json
import os

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402

from jaxhead.models import build_model  # noqa: E402
from jaxhead.training import sharding  # noqa: E402
from jaxhead.training.steps import make_train_step, split_model  # noqa: E402
from trg_random_batch import trg_setup  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")


def main() -> None:
    assert jax.device_count() == 8, jax.devices()
    config, task, batch = trg_setup(8)
    tx = optax.sgd(1e-2)  # SGD: the parameter update is proportional to the gradient.
    results = {}
    for n_dev in (1, 8):
        mesh = sharding.data_mesh(jax.devices()[:n_dev])
        model = build_model(config, rngs=nnx.Rngs(0), **task.model_buffers())
        model.train()
        graphdef, params, rest = split_model(model)
        opt_state = tx.init(params)
        params, rest, opt_state = sharding.replicate((params, rest, opt_state), mesh)
        gbatch = sharding.shard_batch(batch, mesh)
        assert len(gbatch["img"].sharding.device_set) == n_dev

        def loss_of(p, r, b):
            m = nnx.merge(graphdef, p, r, copy=True)
            return task.loss(m, b)[0]

        grads = jax.jit(jax.grad(loss_of))(params, rest, gbatch)
        step = make_train_step(graphdef, task, tx, mesh)
        new_params, new_rest, _, metrics = step(params, rest, opt_state, gbatch, jax.random.key(1))
        results[n_dev] = dict(
            loss=float(metrics["loss"]),
            grads=jax.tree.leaves(jax.device_get(grads)),
            params=jax.tree.leaves(jax.device_get(new_params)),
            batch_stats=jax.tree.leaves(jax.device_get(nnx.State(new_rest).filter(nnx.BatchStat))),
        )

    def max_rel(a: list, b: list) -> float:
        """Max over leaves of the abs difference relative to the leaf's scale; leaves whose
        values are ~0 (e.g. biases followed by BatchNorm) are measured against the whole tree."""
        floor = 1e-3 * max(float(np.abs(x).max()) for x in a)
        return max(float(np.abs(x - y).max()) / max(float(np.abs(x).max()), floor) for x, y in zip(a, b))

    a, b = results[1], results[8]
    print(json.dumps(dict(
        loss_1=a["loss"], loss_8=b["loss"],
        grads=max_rel(a["grads"], b["grads"]),
        params=max_rel(a["params"], b["params"]),
        batch_stats=max_rel(a["batch_stats"], b["batch_stats"]),
        num_batch_stats=len(a["batch_stats"]),
    )))


if __name__ == "__main__":
    main()
