r"""`flame_jax.lbs` throughput on the current backend.

    python experiments/benchmarks/flame_bench.py [--batches 1 64 1024 4096] [--repeats 10] [--write]

Jitted LBS of the synthetic FLAME-format head model (4830 vertices, 300 + 100 components) for random
betas and poses; meshes/s from the median of `--repeats` calls after the compile, which is timed
separately. `--write` records the table in RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from experiments.benchmarks.results_file import write_section  # noqa: E402
from flame_jax import lbs  # noqa: E402
from flame_jax.synthetic import head_model  # noqa: E402

SECTION = "## flame_jax.lbs (flame_bench.py)"


def measure(batch: int, repeats: int) -> tuple[float, float]:
    model = head_model(0)
    rng = np.random.default_rng(0)
    betas = jnp.asarray(rng.normal(0, 1, (batch, 400)), jnp.float32)
    pose = jnp.asarray(rng.normal(0, 0.2, (batch, 15)), jnp.float32)
    fn = jax.jit(lambda m, b, p: lbs(m, b, p)[0])
    t0 = time.perf_counter()
    compiled = fn.lower(model, betas, pose).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(model, betas, pose))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(model, betas, pose))
        times.append(time.perf_counter() - t0)
    return batch / statistics.median(times), compile_s


def read_bandwidth(megabytes: int = 256, repeats: int = 7) -> float:
    """Bytes/s of a jitted sum over a float32 array too large for the caches: the memory's read rate."""
    x = jnp.ones(megabytes * 2**20 // 4, jnp.float32)
    f = jax.jit(jnp.sum)
    jax.block_until_ready(f(x))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(x))
        times.append(time.perf_counter() - t0)
    return x.nbytes / statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024, 4096])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    device = jax.devices()[0]
    machine = f"{device.platform} ({device.device_kind}), {os.cpu_count()} CPU cores, {platform.machine()}, jax {jax.__version__}"
    rows = []
    for b in args.batches:
        rate, compile_s = measure(b, args.repeats)
        rows.append(f"| {b} | {rate:,.0f} | {1e3 * b / rate:.2f} | {compile_s:.2f} |")
        print(rows[-1], flush=True)
    # At B=1 every call reads the whole blend-shape basis once: its size / the read rate is the floor.
    basis = head_model(0).shapedirs.nbytes
    bw = read_bandwidth()
    floor = (
        f"Memory read rate (jitted sum over 256 MB): {bw / 1e9:.1f} GB/s, so reading the {basis / 2**20:.0f} MB "
        f"blend-shape basis once takes {1e3 * basis / bw:.2f} ms, the B=1 floor (1-minute load average "
        f"{os.getloadavg()[0]:.1f} while measuring)."
    )
    print(floor)
    table = (
        f"{SECTION}\n\n`python experiments/benchmarks/flame_bench.py`: jitted `lbs` of the synthetic head model "
        f"(4830 vertices, 400 components), float32, median of {args.repeats} calls. Machine: {machine}.\n\n"
        "| batch | meshes / s | ms / call | compile (s) |\n|---|---|---|---|\n" + "\n".join(rows) + "\n\n" + floor + "\n"
    )
    print(table)
    if args.write:
        write_section(SECTION, table)


if __name__ == "__main__":
    main()
