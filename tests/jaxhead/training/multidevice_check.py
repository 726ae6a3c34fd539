"""Run in a fresh process with 8 fake CPU devices: one TRG train step on a 1-device mesh and on
an 8-device mesh must give the same loss, gradients, BatchNorm statistics and parameters.

The comparison runs in float64 (parameters, statistics and batch cast). In float32 the sharded
sums (loss, BatchNorm statistics) are reduced in another order on 8 devices, and
back-propagation amplifies that ~1e-7 rounding by up to ~1e5 on the way back to the stem, by an
amount that depends on the processor (relative gradient differences from 2e-6 to 7e-3 were
seen). In float64 the same noise is ~1e-14, so a tight limit tests semantics, not rounding.

Two deliberately broken 8-device steps show that the comparison can fail: each device
normalises with its own shard's BatchNorm statistics (gradients still averaged), and, in
addition, each device updates with its own gradient (no all-reduce).

Prints one JSON line with the max relative differences; the pytest wrapper asserts on them.
"""

from __future__ import annotations

import json
import os
from typing import Any

# The steps run in milliseconds; LLVM's optimisation of five compiled steps is most of the time.
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + (
    " --xla_force_host_platform_device_count=8"
    " --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
)
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402
from jax.sharding import Mesh  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from jaxhead.models import build_model  # noqa: E402
from jaxhead.training import sharding  # noqa: E402
from jaxhead.tasks import Task  # noqa: E402
from jaxhead.training.steps import TrainStep, make_train_step, split_model  # noqa: E402
from trg_random_batch import trg_setup  # noqa: E402

jax.config.update("jax_enable_x64", True)

DTYPE = jnp.float64
LR = 1e-2


def _to(tree: Any, dtype: jnp.dtype) -> Any:
    return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def remember_gradient() -> optax.GradientTransformation:
    """Passes the gradient through and keeps it as its state: the step's own gradient comes back."""
    return optax.GradientTransformation(
        lambda params: jax.tree.map(jnp.zeros_like, params), lambda grads, state, params=None: (grads, grads)
    )


def per_device_step(
    graphdef: nnx.GraphDef, task: Task, tx: optax.GradientTransformation, mesh: Mesh, all_reduce_grads: bool
) -> TrainStep:
    """A broken data-parallel step: under `shard_map` each device sees only its shard, so
    BatchNorm uses per-device statistics; with `all_reduce_grads=False` each device also
    updates with its own gradient. Returns device 0's (params, rest, opt_state, {"loss"});
    the key is unused (the model it runs has no dropout)."""

    def local(params, rest, opt_state, batch):
        def loss_fn(p, r):
            model = nnx.merge(graphdef, p, r, copy=True)
            loss, _ = task.loss(model, batch)
            return loss, nnx.state(model, nnx.Not(nnx.Param))

        (loss, new_rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest)
        if all_reduce_grads:
            grads = jax.lax.pmean(grads, sharding.DATA_AXIS)
        updates, new_opt_state = tx.update(grads, opt_state, params)
        out = (optax.apply_updates(params, updates), new_rest, new_opt_state, {"loss": loss})
        return jax.tree.map(lambda x: x[None], out)  # stacked over devices

    data = P(sharding.DATA_AXIS)
    stacked = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(), P(), P(), data), out_specs=data, check_vma=False))

    def step(params, rest, opt_state, batch, key):
        return jax.tree.map(lambda x: x[0], stacked(params, rest, opt_state, batch))

    return step


def main() -> None:
    assert jax.device_count() == 8, jax.devices()
    config, task, batch = trg_setup(8)
    config.model.num_iterations = 1  # one regressor: a smaller compile, the same kinds of layers
    # The 1- and 8-device steps keep dropout: its masks must not depend on the sharding. The
    # broken steps run without it (per-device masks would differ from the global ones for a
    # reason unrelated to what they break) and are compared with a 1-device step without it.
    no_dropout = config.copy_and_resolve_references()
    no_dropout.model.dropout = 0.0
    batch = _to(batch, DTYPE)
    tx = optax.chain(remember_gradient(), optax.sgd(LR))  # SGD: the update is proportional to the gradient.
    mesh1, mesh8 = sharding.data_mesh(jax.devices()[:1]), sharding.data_mesh(jax.devices())
    runs = {
        "1": (config, mesh1, lambda g: make_train_step(g, task, tx, mesh1)),
        "8": (config, mesh8, lambda g: make_train_step(g, task, tx, mesh8)),
        "1_no_dropout": (no_dropout, mesh1, lambda g: make_train_step(g, task, tx, mesh1)),
        "bn_per_device": (no_dropout, mesh8, lambda g: per_device_step(g, task, tx, mesh8, all_reduce_grads=True)),
        "grad_per_device": (no_dropout, mesh8, lambda g: per_device_step(g, task, tx, mesh8, all_reduce_grads=False)),
    }
    results = {}
    for name, (cfg, mesh, make_step) in runs.items():
        model = build_model(cfg, rngs=nnx.Rngs(0), **task.model_buffers())
        model.train()
        graphdef, params, rest = split_model(model)
        params, rest = _to(params, DTYPE), _to(rest, DTYPE)
        opt_state = tx.init(params)
        params, rest, opt_state = sharding.replicate((params, rest, opt_state), mesh)
        gbatch = sharding.shard_batch(batch, mesh)
        assert len(gbatch["img"].sharding.device_set) == mesh.devices.size
        out = make_step(graphdef)(params, rest, opt_state, gbatch, jax.random.key(1))
        new_params, new_rest, new_opt_state, metrics = jax.device_get(out)
        grads = jax.tree.leaves(new_opt_state[0])
        assert all(g.dtype == DTYPE for g in grads), {g.dtype for g in grads}
        results[name] = dict(
            loss=float(metrics["loss"]),
            grads=grads,
            params=jax.tree.leaves(new_params),
            batch_stats=jax.tree.leaves(nnx.State(new_rest).filter(nnx.BatchStat)),
        )

    def max_rel(a: list, b: list) -> float:
        """Max over leaves of the abs difference relative to the leaf's scale; leaves whose
        values are ~0 (e.g. biases followed by BatchNorm) are measured against the whole tree."""
        floor = 1e-3 * max(float(np.abs(x).max()) for x in a)
        return max(float(np.abs(x - y).max()) / max(float(np.abs(x).max()), floor) for x, y in zip(a, b))

    report = dict(loss_1=results["1"]["loss"], num_batch_stats=len(results["1"]["batch_stats"]))
    for name, ref_name in (("8", "1"), ("bn_per_device", "1_no_dropout"), ("grad_per_device", "1_no_dropout")):
        r, ref = results[name], results[ref_name]
        report[name] = dict(
            loss=abs(r["loss"] - ref["loss"]) / abs(ref["loss"]),
            **{k: max_rel(ref[k], r[k]) for k in ("grads", "params", "batch_stats")},
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
