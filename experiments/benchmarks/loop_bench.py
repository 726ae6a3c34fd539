r"""Does the input side keep up with the step? The real training loop against the jitted step alone.

    python experiments/benchmarks/loop_bench.py --model trg --variant cpu --steps 40 [--write]

Prints one JSON line:
  step_only_img_s      the jitted train step on device-resident batches of the real pipeline;
  loop_img_s           `jaxhead.train` itself (pipeline, prefetch, step, logging), from its own
                       images/s over a window of `--steps` steps after a first window that compiles;
  host_img_s_per_core  the train pipeline alone (read, decode, host transform), per worker process;
  device_idle_frac     1 - loop_img_s / step_only_img_s: the share of the step time the loop adds.
The three figures are measured one after the other in this process, on the embedded data
(built on first use). `--write` records the line in RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import itertools
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import jax
from flax import nnx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from experiments.benchmarks.results_file import write_section  # noqa: E402
from jaxhead.models import build_model  # noqa: E402
from jaxhead.tasks import make_task  # noqa: E402
from jaxhead.train import train  # noqa: E402
from jaxhead.training import data as train_data  # noqa: E402
from jaxhead.training import sharding  # noqa: E402
from jaxhead.training.metric_log import read_metrics  # noqa: E402
from jaxhead.training.optimizer import make_optimizer  # noqa: E402
from jaxhead.training.steps import make_train_step, split_model  # noqa: E402

SECTION = "## Training loop against the step alone (loop_bench.py), {model}"


def host_rate(config, task, batches: int) -> float:
    """Images/s of the train pipeline alone, per worker process (1 without workers)."""
    bs = config.data.batch_size
    with contextlib.closing(iter(train_data.train_batches(config, bs, task.transform()))) as it:
        next(it)
        t0 = time.perf_counter()
        for _ in range(batches):
            next(it)
        rate = batches * bs / (time.perf_counter() - t0)
    return rate / max(config.data.num_workers, 1)


def step_only_rate(config, task, steps: int) -> float:
    """Images/s of the jitted step cycling over 4 real batches already on the devices."""
    mesh = sharding.data_mesh()
    bs = sharding.local_batch_size(config.data.batch_size, mesh)
    with contextlib.closing(iter(train_data.train_batches(config, bs, task.transform()))) as it:
        batches = [sharding.shard_batch(b, mesh) for b in itertools.islice(it, 4)]
    model = build_model(config, rngs=nnx.Rngs(0), **task.model_buffers())
    model.train()
    graphdef, params, rest = split_model(model)
    tx = make_optimizer(config.optim, 100, 10_000)
    state = sharding.replicate((params, rest, tx.init(params)), mesh)
    step = make_train_step(graphdef, task, tx, mesh, config.train.compute_dtype)
    key = jax.random.key(0)
    *state, m = step(*state, batches[0], key)  # compile
    jax.block_until_ready(m)
    t0 = time.perf_counter()
    for i in range(steps):
        *state, m = step(*state, batches[i % len(batches)], jax.random.fold_in(key, i))
    jax.block_until_ready(m)
    return steps * config.data.batch_size / (time.perf_counter() - t0)


def loop_rate(config, steps: int) -> float:
    """`jaxhead.train`'s own images/s over its second window of `steps` steps."""
    config.train.update(num_steps=2 * steps, log_every=steps, eval_every_steps=10**9, checkpoint_every=10**9)
    config.eval.update(max_batches=1, num_pictures=0, baseline_batches=1)
    with tempfile.TemporaryDirectory() as workdir:
        train(config, workdir)
        rows = [r for r in read_metrics(workdir) if r["split"] == "train"]
    return float(rows[-1]["images_per_s"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("trg", "dad3dnet"), required=True)
    p.add_argument("--variant", default="cpu")
    p.add_argument("--steps", type=int, default=40, help="timed steps of each measurement")
    p.add_argument("--write", action="store_true", help="record the result in RESULTS.md")
    args = p.parse_args()

    def config():
        return importlib.import_module(f"configs.{args.model}").get_config(args.variant)

    train_data.prepare(config())
    task = make_task(config())
    host = host_rate(config(), task, max(args.steps // 2, 5))
    step_only = step_only_rate(config(), task, args.steps)
    loop = loop_rate(config(), args.steps)
    out = dict(
        model=f"{args.model}:{args.variant}", batch=config().data.batch_size, workers=config().data.num_workers,
        step_only_img_s=round(step_only, 1), loop_img_s=round(loop, 1), host_img_s_per_core=round(host, 1),
        device_idle_frac=round(max(0.0, 1.0 - loop / step_only), 3),
    )
    print(json.dumps(out))
    if args.write:
        dev = jax.devices()[0]
        machine = f"{jax.device_count()}x {dev.device_kind} ({dev.platform}), {platform.machine()}, jax {jax.__version__}"
        title = SECTION.format(model=out["model"])
        write_section(title, f"{title}\n\n`{' '.join(sys.argv)}` on {machine}:\n\n```\n{json.dumps(out)}\n```\n")


if __name__ == "__main__":
    main()
