"""The jitted train and eval steps, generic over a `Task`.

The model lives as (graphdef, params, rest): `params` are the `nnx.Param` leaves the
optimizer updates; `rest` holds BatchNorm statistics, buffers and RNG streams. All
of it is replicated over the mesh and the batch is sharded on `data`.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from jaxhead.tasks import Task
from jaxhead.training import rng
from jaxhead.training.sharding import batch_sharded, replicated

TrainStep = Callable[[Any, Any, Any, dict[str, jax.Array], jax.Array], tuple[Any, Any, Any, dict[str, jax.Array]]]


def split_model(model: nnx.Module) -> tuple[nnx.GraphDef, nnx.State, nnx.State]:
    """(graphdef, params, rest) with params = the trainable `nnx.Param` leaves."""
    return nnx.split(model, nnx.Param, ...)


def _reseed(model: nnx.Module, key: jax.Array) -> None:
    """Points every RNG stream of `model` at `key`: dropout masks are a pure function of the step."""
    tags = {v.tag for _, v in nnx.iter_graph(model) if isinstance(v, nnx.RngKey)}
    if tags:
        nnx.reseed(model, **{t: key for t in tags})


def _cast_floats(tree: Any, dtype: jnp.dtype) -> Any:
    return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def all_finite(tree: Any) -> jax.Array:
    """() bool: every floating-point leaf of `tree` is finite everywhere."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def make_train_step(
    graphdef: nnx.GraphDef,
    task: Task,
    tx: optax.GradientTransformation,
    mesh: Mesh,
    compute_dtype: str = "float32",
) -> TrainStep:
    """A jitted `(params, rest, opt_state, batch, key) -> (params, rest, opt_state, metrics)`.

    The step key splits into the augmentation key (`task.augment` sees the batch first) and the
    dropout key that reseeds the model's RNG streams (`jaxhead.training.rng`).

    With `compute_dtype="bfloat16"` the forward/backward pass runs on bf16 copies of
    the parameters and model inputs; the parameters and optimizer state stay f32.
    `metrics["finite"]` is False for a step whose loss, gradient norm or updated parameters,
    model state or optimizer state are not finite; such a step returns its inputs unchanged.
    """
    dtype = jnp.dtype(compute_dtype)

    def step(params, rest, opt_state, batch, key):
        augment_key, dropout_key = rng.split_step_key(key)
        batch = task.augment(batch, augment_key)

        # copy=True gives fresh Variables owned by this trace, which BatchNorm may update.
        def loss_fn(p, r):
            model = nnx.merge(graphdef, _cast_floats(p, dtype) if dtype != jnp.float32 else p, r, copy=True)
            _reseed(model, dropout_key)
            inputs = dict(batch)
            if dtype != jnp.float32:
                inputs.update({k: batch[k].astype(dtype) for k in task.input_keys})
            loss, terms = task.loss(model, inputs)
            new_rest = nnx.state(model, nnx.Not(nnx.Param))
            return loss, (terms, new_rest)

        (loss, (terms, new_rest)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest)
        grad_norm = optax.tree.norm(grads)
        updates, new_opt_state = tx.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        metrics = {"loss": loss, "grad_norm": grad_norm, **{f"loss/{k}": v for k, v in terms.items()}}
        # The guard: a step whose loss, gradient or updated state is not finite changes nothing.
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & all_finite((new_params, new_rest, new_opt_state))
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)  # noqa: E731
        metrics["finite"] = finite
        return keep(new_params, params), keep(new_rest, rest), keep(new_opt_state, opt_state), metrics

    rep, data = replicated(mesh), batch_sharded(mesh)
    return jax.jit(
        step,
        in_shardings=(rep, rep, rep, data, rep),
        out_shardings=(rep, rep, rep, rep),
        donate_argnums=(0, 1, 2),
    )


def make_eval_step(graphdef: nnx.GraphDef, task: Task, mesh: Mesh) -> Callable:
    """A jitted `(params, rest, batch) -> predictions` with the model in eval mode.

    `graphdef` must come from a model in eval mode (`model.eval()` before splitting).
    Predictions keep the batch sharding.
    """

    def step(params, rest, batch):
        model = nnx.merge(graphdef, params, rest, copy=True)
        return task.predict(model, batch)

    rep, data = replicated(mesh), batch_sharded(mesh)
    return jax.jit(step, in_shardings=(rep, rep, data), out_shardings=data)
