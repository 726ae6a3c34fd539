r"""Train-step throughput of the data-parallel step (`jaxhead.training.steps`) on random batches.

    python experiments/benchmarks/train_bench.py --model trg --batch 32 [--variant cpu] [--dtype bfloat16]
    python experiments/benchmarks/train_bench.py --model dad3dnet --batch 16 [--write]

Builds the model from its config (`configs/<model>.py[:variant]`), jits one train step over a
mesh of all devices, and reports compile time, the median step time and images/s. Batches
are random arrays of the right shapes and ranges (the loss value is meaningless, the cost is
not). `--write` records the row in RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
import optax
from flax import nnx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from jaxhead.models import build_model  # noqa: E402
from jaxhead.tasks import make_task  # noqa: E402
from jaxhead.training import sharding  # noqa: E402
from jaxhead.training.steps import make_train_step, split_model  # noqa: E402
from jaxhead.training.xla_flags import add_xla_flags  # noqa: E402

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Train step (train_bench.py)"


def trg_batch(config, task, B: int, rng: np.random.Generator) -> dict:
    from flame_jax.synthetic import head_assets

    head = head_assets(0)
    S, V = config.model.img_size, 1220
    K = np.array([[600.0, 0, 400], [0, 600, 400], [0, 0, 1]], np.float32)
    face = head.mean_face_head[None] + rng.normal(0, 0.002, (B, V, 3))
    cam = face + np.array([0.0, 0.0, 0.6])
    uv = cam @ K.T
    batch = dict(
        img=rng.normal(size=(B, S, S, 3)), K=np.broadcast_to(K, (B, 3, 3)),
        K_crop=np.broadcast_to(np.array([[S * 2.0, 0, S / 2], [0, S * 2.0, S / 2], [0, 0, 1]]), (B, 3, 3)),
        bbox_info=np.broadcast_to(np.array([250, 250, 550, 550, 600, 800, 800]), (B, 7)),
        R=np.broadcast_to(np.eye(3), (B, 3, 3)), t=np.broadcast_to([0.0, 0.0, 0.6], (B, 3)),
        vtx_world=face, vtx_cam=cam,
        vtx_img=np.concatenate([uv[..., :2] / uv[..., 2:], np.ones((B, V, 1))], -1),
        lmk68_crop=np.concatenate([rng.uniform(-0.5, 0.5, (B, 68, 2)), np.ones((B, 68, 1))], -1),
        has_3d_vtx=np.ones(B), has_rot=np.ones(B),
    )
    return batch


def dad_batch(config, task, B: int, rng: np.random.Generator) -> dict:
    flame = task.flame
    V = flame.v_template.shape[0]
    S = config.model.img_size
    batch = dict(
        image=rng.normal(size=(B, S, S, 3)),
        heatmap=rng.uniform(0, 1, (B, S // 4, S // 4, 68)) ** 8,
        landmarks=rng.uniform(0.2, 0.8, (B, 68, 2)), presence=np.ones((B, 68)),
        vertices_2d=rng.uniform(0, S, (B, V, 2)),
        vertices=np.asarray(flame.v_template)[None] + rng.normal(0, 0.002, (B, V, 3)),
    )
    return batch


class Prepared(NamedTuple):
    run: Callable[[], None]  # one more step, waited for
    n_params: int
    compile_s: float
    flops: float  # of one step, XLA's cost analysis


def prepare(model_name: str, variant: str | None, batch_size: int, dtype: str = "float32") -> Prepared:
    """Compiles the train step on a random batch and runs it once."""
    config = importlib.import_module(f"configs.{model_name}").get_config(variant)
    config.data.device_augment = False  # the random batches are already in the augmented form
    rng = np.random.default_rng(0)
    make = trg_batch if model_name == "trg" else dad_batch
    task = make_task(config)
    batch = {k: np.asarray(v, np.float32) for k, v in make(config, task, batch_size, rng).items()}
    mesh = sharding.data_mesh()
    model = build_model(config, rngs=nnx.Rngs(0), **task.model_buffers())
    model.train()
    graphdef, params, rest = split_model(model)
    n_params = sum(x.size for x in jax.tree.leaves(params))
    tx = optax.adam(1e-4)
    opt_state = tx.init(params)
    state = list(sharding.replicate((params, rest, opt_state), mesh))
    step = make_train_step(graphdef, task, tx, mesh, dtype)
    gbatch = sharding.shard_batch(batch, mesh)
    counter = [0]

    t0 = time.perf_counter()
    compiled = step.lower(*state, gbatch, jax.random.key(0)).compile()

    def run() -> None:
        state[0], state[1], state[2], m = compiled(*state, gbatch, jax.random.key(counter[0]))
        counter[0] += 1
        jax.block_until_ready(m)

    run()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return Prepared(run, n_params, time.perf_counter() - t0, float(cost.get("flops", 0.0)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("trg", "dad3dnet"), required=True)
    p.add_argument("--variant", default=None, help="config variant, e.g. cpu")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--xla_cpu_flags", default="", help="XLA options, as config.train.xla_cpu_flags")
    p.add_argument("--write", action="store_true", help="record the result in RESULTS.md")
    args = p.parse_args()
    add_xla_flags(args.xla_cpu_flags)

    run, n_params, compile_s, _ = prepare(args.model, args.variant, args.batch, args.dtype)
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    t = float(np.median(times))
    dev = jax.devices()[0]
    machine = f"{jax.device_count()}x {dev.device_kind} ({dev.platform}), {platform.processor() or platform.machine()}"
    row = (
        f"| {args.model}{':' + args.variant if args.variant else ''} | {args.batch} | {args.dtype} | {n_params:,} "
        f"| {compile_s:.1f} | {t:.3f} | {args.batch / t:.1f} | {machine}, jax {jax.__version__} |"
    )
    print(row)
    if args.write:
        header = (
            f"{SECTION}\n\nOne jitted train step (forward, backward, Adam) on random batches; median of "
            f"{args.steps} steps after compilation.\n\n| model | batch | dtype | params | compile (s) | step (s) "
            "| images/s | machine |\n|---|---|---|---|---|---|---|---|\n"
        )
        text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
        if SECTION not in text:
            text = text.rstrip("\n") + "\n\n" + header
        start = text.index(SECTION)
        end = text.find("\n## ", start + 1)
        section = text[start:] if end < 0 else text[start:end + 1]
        # One row per (model, batch, dtype, device); the row goes after the table, before any notes.
        def key(line: str) -> list[str]:
            cols = line.split("|")
            return cols[1:4] + [cols[8].split(",")[0].strip()] if len(cols) > 8 else cols

        lines = [ln for ln in section.rstrip("\n").split("\n") if key(ln) != key(row)]
        last = max(i for i, ln in enumerate(lines) if ln.startswith("|"))
        lines.insert(last + 1, row)
        text = text[:start] + "\n".join(lines) + "\n" + ("" if end < 0 else text[end + 1:])
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
