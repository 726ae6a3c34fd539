r"""Model cost on the current machine: parameters, FLOPs, compile time, train and eval step time.

    python experiments/benchmarks/model_bench.py --model trg [--batch 8] [--repeats 5]

FLOPs per image come from XLA's cost analysis of the jitted eval forward at batch 1. The
train step is forward + backward + Adam update of the model's training loss at `--batch`;
the eval step is the jitted forward in eval mode. Times are medians over `--repeats` runs
after one warm-up run; compile times are lower + compile of each step. Inputs are synthetic
arrays of the training shapes. Prints one markdown table row per model.

To add a model, write a `bench_<name>(batch) -> Bench` and register it in `BENCHES`.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


class Bench(NamedTuple):
    model: nnx.Module  # freshly built, in train mode
    inputs: Callable[[int], tuple]  # batch size -> model call arguments
    batch: dict[str, jax.Array]  # the loss's labels at --batch
    loss: Callable[[Any, dict[str, jax.Array]], jax.Array]  # (model output, batch) -> scalar


def bench_trg(batch: int) -> Bench:
    from jaxhead.losses.trg import loss_config, trg_loss
    from jaxhead.models.trg import TRG, model_config

    cfg = model_config()
    rng = np.random.default_rng(0)
    V, S = cfg.num_vertices, cfg.num_sampled
    model = TRG(
        cfg,
        rngs=nnx.Rngs(0),
        init_face=rng.normal(0, 0.05, (V, 3)).astype(np.float32),
        init_pose=np.array([1, 0, 0, 1, 0, 0, 1, 0, 0], np.float32),
        subsample=np.sort(rng.choice(V, S, replace=False)),
    )
    kpt_ind = rng.choice(V, 68, replace=False)
    triangles = rng.integers(0, V, (2304, 3))
    size = cfg.img_size

    def inputs(n: int) -> tuple:
        img = jnp.asarray(rng.normal(size=(n, size, size, 3)), jnp.float32)
        K_crop = jnp.tile(jnp.array([[400.0, 0, size / 2], [0, 400.0, size / 2], [0, 0, 1]]), (n, 1, 1))
        bbox = jnp.tile(jnp.array([250.0, 230, 550, 530, 630, 800, 800]), (n, 1))
        return img, K_crop, bbox

    f32 = np.float32
    labels = dict(
        img=inputs(batch)[0],
        K=jnp.tile(jnp.array([[630.0, 0, 400], [0, 630.0, 400], [0, 0, 1]]), (batch, 1, 1)),
        bbox_info=inputs(batch)[2],
        R=jnp.tile(jnp.eye(3), (batch, 1, 1)),
        vtx_world=jnp.asarray(rng.normal(0, 0.05, (batch, V, 3)), f32),
        vtx_cam=jnp.asarray(rng.normal(0, 0.05, (batch, V, 3)) + [0, 0, 0.5], f32),
        vtx_img=jnp.asarray(
            np.concatenate([rng.uniform(0, 800, (batch, V, 2)), np.ones((batch, V, 1))], -1), f32
        ),
        lmk68_crop=jnp.asarray(
            np.concatenate([rng.uniform(-1, 1, (batch, 68, 2)), np.ones((batch, 68, 1))], -1), f32
        ),
        has_3d_vtx=jnp.ones(batch),
        has_rot=jnp.ones(batch),
    )
    lcfg = loss_config()

    def loss(out: Any, b: dict[str, jax.Array]) -> jax.Array:
        return trg_loss(out, b, lcfg, kpt_ind=kpt_ind, triangles=triangles)[0]

    return Bench(model, inputs, labels, loss)


def bench_dad3dnet(batch: int) -> Bench:
    """The official DAD-3DNet at 256 px with the synthetic FLAME-format head model in the loss."""
    from flame_jax.synthetic import head_model
    from jaxhead.losses.dad3dnet import dad3dnet_loss, loss_config
    from jaxhead.models.dad3dnet import DAD3DNet, model_config

    cfg = model_config()
    rng = np.random.default_rng(0)
    model = DAD3DNet(cfg, rngs=nnx.Rngs(0))
    flame = head_model(0)
    V, size = flame.v_template.shape[0], cfg.img_size

    def inputs(n: int) -> tuple:
        return (jnp.asarray(rng.normal(size=(n, size, size, 3)), jnp.float32),)

    f32 = np.float32
    labels = dict(
        heatmap=jnp.asarray(rng.uniform(0, 1, (batch, size // 4, size // 4, 68)), f32),
        vertices=jnp.asarray(np.asarray(flame.v_template)[None] + rng.normal(0, 0.002, (batch, V, 3)), f32),
        vertices_2d=jnp.asarray(rng.uniform(0, size, (batch, V, 2)), f32),
        landmarks=jnp.asarray(rng.uniform(0, 1, (batch, 68, 2)), f32),
        presence=jnp.ones((batch, 68), f32),
    )
    lcfg = loss_config("official")

    def loss(out: Any, b: dict[str, jax.Array]) -> jax.Array:
        return dad3dnet_loss(lcfg, flame, out, b)[0]

    return Bench(model, inputs, labels, loss)


BENCHES: dict[str, Callable[[int], Bench]] = {"trg": bench_trg, "dad3dnet": bench_dad3dnet}


def _timed(fn: Callable[[], Any], repeats: int) -> float:
    jax.block_until_ready(fn())  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(name: str, batch: int, repeats: int) -> dict[str, float]:
    bench = BENCHES[name](batch)
    model = bench.model
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))

    # Eval forward: FLOPs at batch 1, time at `batch`.
    model.eval()
    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda s, *args: nnx.merge(graphdef, s, copy=True)(*args))
    flops = forward.lower(state, *bench.inputs(1)).compile().cost_analysis()["flops"]
    eval_inputs = bench.inputs(batch)
    t0 = time.perf_counter()
    eval_compiled = forward.lower(state, *eval_inputs).compile()
    eval_compile = time.perf_counter() - t0
    eval_time = _timed(lambda: eval_compiled(state, *eval_inputs), repeats)

    # Train step: loss, gradient of the nnx.Param leaves, Adam update.
    model.train()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = optax.adam(1e-4)
    opt_state = tx.init(params)

    def train_step(params, rest, opt_state, inputs, labels):
        def loss_fn(p):
            m = nnx.merge(graphdef, p, rest, copy=True)
            loss = bench.loss(m(*inputs), labels)
            return loss, nnx.state(m, nnx.Not(nnx.Param))

        (loss, new_rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_rest, opt_state, loss

    step = jax.jit(train_step)
    t0 = time.perf_counter()
    train_compiled = step.lower(params, rest, opt_state, eval_inputs, bench.batch).compile()
    train_compile = time.perf_counter() - t0
    train_time = _timed(lambda: train_compiled(params, rest, opt_state, eval_inputs, bench.batch), repeats)
    return dict(
        params=n_params,
        gflops_per_image=flops / 1e9,
        eval_compile_s=eval_compile,
        train_compile_s=train_compile,
        eval_step_s=eval_time,
        train_step_s=train_time,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(BENCHES), action="append", required=True, help="repeatable")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {jax.device_count()} x "
        f"{jax.devices()[0].device_kind}, jax {jax.__version__}, batch {args.batch}"
    )
    columns = (
        "parameters",
        "GFLOPs / image (fwd)",
        "compile eval / train (s)",
        "eval step (s)",
        "train step (s)",
    )
    print("| model | " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|")
    for name in args.model:
        r = measure(name, args.batch, args.repeats)
        print(
            f"| {name} | {r['params']:,} | {r['gflops_per_image']:.2f} | {r['eval_compile_s']:.1f} / "
            f"{r['train_compile_s']:.1f} | {r['eval_step_s']:.3f} | {r['train_step_s']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
