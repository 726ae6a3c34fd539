"""Run in a fresh process with 8 fake CPU devices: one TRG train step on a 1-device mesh and
on an 8-device mesh must give the same loss, gradients, BatchNorm statistics and parameters.

Prints one JSON line with the max differences; the pytest wrapper asserts on them.
"""

from __future__ import annotations

import json
import os
import types

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402

import ml_collections  # noqa: E402

from jaxhead.losses.trg import loss_config  # noqa: E402
from jaxhead.models import build_model  # noqa: E402
from jaxhead.models.trg import model_config  # noqa: E402
from jaxhead.tasks.trg import TRGTask  # noqa: E402
from jaxhead.training import sharding  # noqa: E402
from jaxhead.training.steps import make_train_step, split_model  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")


def main() -> None:
    assert jax.device_count() == 8, jax.devices()
    config = ml_collections.ConfigDict(dict(model=model_config(), loss=loss_config()))
    config.model.update(img_size=64, width_multiplier=0.125, regressor_hidden=64)
    S, V, B = config.model.img_size, config.model.num_vertices, 8
    rng = np.random.default_rng(0)
    topology = types.SimpleNamespace(
        kpt_ind=rng.choice(V, 68, replace=False),
        triangles=rng.integers(0, V, (200, 3)),
        init_face=rng.normal(0, 0.05, (V, 3)).astype(np.float32),
        init_pose=np.array([1, 0, 0, 1, 0, 0, 1, 0, 0], np.float32),
        subsample=np.sort(rng.choice(V, config.model.num_sampled, replace=False)),
    )
    task = TRGTask(config, data_info=types.SimpleNamespace(topology=topology))
    K = np.array([[500.0, 0, 400], [0, 500, 400], [0, 0, 1]], np.float32)
    box = np.array([250, 230, 550, 530], np.float32)
    K_crop = np.array([[500 * S / 300, 0, (400 - 250) * S / 300], [0, 500 * S / 300, (400 - 230) * S / 300], [0, 0, 1]])
    R = np.stack([np.linalg.qr(rng.normal(size=(3, 3)))[0] for _ in range(B)])
    R *= np.linalg.det(R)[:, None, None]
    face = rng.normal(0, 0.05, (B, V, 3))
    t = np.array([0.0, 0.0, 0.5]) + rng.normal(0, 0.02, (B, 3))
    cam = np.einsum("bij,bnj->bni", R, face) + t[:, None]
    uv = np.einsum("ij,bnj->bni", K, cam)
    batch = dict(
        img=rng.normal(size=(B, S, S, 3)).astype(np.float32),
        K=np.broadcast_to(K, (B, 3, 3)).astype(np.float32),
        K_crop=np.broadcast_to(K_crop, (B, 3, 3)).astype(np.float32),
        bbox_info=np.broadcast_to(np.r_[box, 500, 800, 800], (B, 7)).astype(np.float32),
        R=R.astype(np.float32),
        t=t.astype(np.float32),
        vtx_world=face.astype(np.float32),
        vtx_cam=cam.astype(np.float32),
        vtx_img=np.concatenate([uv[..., :2] / uv[..., 2:], np.ones((B, V, 1))], -1).astype(np.float32),
        lmk68_crop=np.concatenate([rng.uniform(-1, 1, (B, 68, 2)), np.ones((B, 68, 1))], -1).astype(np.float32),
        has_3d_vtx=np.ones(B, np.float32),
        has_rot=np.ones(B, np.float32),
    )
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
