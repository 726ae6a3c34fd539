"""bf16 compute: activations stay bf16 through BatchNorm, parameters and statistics stay f32."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxhead.models import build_model
from jaxhead.models.batch_norm import batch_norm
from jaxhead.training import sharding
from jaxhead.training.steps import make_train_step, split_model
from trg_random_batch import trg_setup


def _stats(bn: nnx.BatchNorm) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(bn.mean[...]), np.asarray(bn.var[...])


def _ours_and_flax_default() -> tuple[nnx.BatchNorm, nnx.BatchNorm]:
    return batch_norm(8, rngs=nnx.Rngs(0)), nnx.BatchNorm(
        8, momentum=0.9, epsilon=1e-5, use_fast_variance=False, rngs=nnx.Rngs(0)
    )


def test_batch_norm_keeps_the_input_dtype_and_f32_statistics() -> None:
    x = jax.random.normal(jax.random.key(0), (4, 5, 5, 8)) * 3 + 1
    ours, flax_default = _ours_and_flax_default()
    # f32 input: exactly Flax's default promotion.
    np.testing.assert_array_equal(ours(x), flax_default(x))
    np.testing.assert_array_equal(_stats(ours)[1], _stats(flax_default)[1])

    # bf16 input: bf16 output; statistics accumulate in f32 from the bf16 values.
    xb = x.astype(jnp.bfloat16)
    ours, flax_default = _ours_and_flax_default()
    y = ours(xb)
    assert y.dtype == jnp.bfloat16 and ours.mean[...].dtype == jnp.float32
    y_ref = flax_default(xb.astype(jnp.float32))
    np.testing.assert_allclose(np.asarray(y, np.float32), y_ref, atol=0.03)
    for a, b in zip(_stats(ours), _stats(flax_default)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


def test_trg_bf16_train_step_matches_f32() -> None:
    config, task, batch = trg_setup(2)
    mesh = sharding.data_mesh(jax.devices()[:1])
    tx = optax.sgd(1e-2)  # SGD: the update is the gradient, so the two steps compare directly.
    runs = {}
    for dtype in ("float32", "bfloat16"):
        model = build_model(config, rngs=nnx.Rngs(0), **task.model_buffers())
        model.train()
        graphdef, params, rest = split_model(model)
        before = _flat(params)
        opt_state = tx.init(params)
        params, rest, opt_state = sharding.replicate((params, rest, opt_state), mesh)
        step = make_train_step(graphdef, task, tx, mesh, dtype)
        new_params, new_rest, _, metrics = step(
            params, rest, opt_state, sharding.shard_batch(batch, mesh), jax.random.key(1)
        )
        floats = [x for x in jax.tree.leaves((new_params, new_rest)) if jnp.issubdtype(x.dtype, jnp.floating)]
        assert all(x.dtype == jnp.float32 for x in floats), dtype
        runs[dtype] = (float(metrics["loss"]), bool(metrics["finite"]), _flat(new_params) - before)

        # The convolutional features are computed in the requested dtype (the regressors in f32).
        def forward(p, r, *inputs):
            return nnx.merge(graphdef, jax.tree.map(lambda x: x.astype(dtype), p), r, copy=True)(*inputs)

        inputs = (jnp.asarray(batch[k], dtype) for k in ("img", "K_crop", "bbox_info"))
        out = jax.eval_shape(forward, new_params, new_rest, *inputs)  # dtypes only, nothing computed
        assert out["lmk68_heatmap_logits"].dtype == jnp.dtype(dtype)
        assert all(f.dtype == jnp.dtype(dtype) for f in out["feat_deconv"])

    (loss32, ok32, d32), (loss16, ok16, d16) = runs["float32"], runs["bfloat16"]
    assert ok32 and ok16
    assert abs(loss16 - loss32) <= 0.05 * abs(loss32), (loss16, loss32)
    cosine = d16 @ d32 / (np.linalg.norm(d16) * np.linalg.norm(d32))
    assert cosine > 0.9, cosine
