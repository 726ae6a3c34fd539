r"""Input-pipeline throughput and the synthetic build rate.

    python experiments/benchmarks/pipeline_bench.py [--data_dir D] [--config small] [--batches 20] [--write]

For TRG (crop 192) and DAD-3DNet (crop 256) training pipelines with 0, 1 and 2 grain worker processes,
with the augmentation on the host (the numpy reference) and on the device (the host only reads and
decodes; `config.data.device_augment`), timed alternately: images/s over `--batches` batches of 32
after one warm-up batch, that rate per worker process (per core), and with 0 workers the images per
CPU-second of the process, which a machine shared with other jobs does not distort. Then the synthetic_heads render rate
(images/s of `render_examples` at 256 px, JPEG-encoded, after a warm-up batch). The dataset is built
first if missing. `--write` records the table in RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from data_pipelines.build import ensure_built  # noqa: E402
from data_pipelines.builders import synthetic_heads  # noqa: E402
from data_pipelines.pipelines import make_dataset  # noqa: E402
from experiments.benchmarks.results_file import write_section  # noqa: E402
from flame_jax.synthetic import head_assets  # noqa: E402
from jaxhead.tasks import make_task  # noqa: E402

SECTION = "## Input pipelines (pipeline_bench.py)"
BATCH = 32


def _config(model: str, data_dir: str, builder_config: str, workers: int, device_augment: bool = True):
    spec = importlib.util.spec_from_file_location(f"cfg_{model}", REPO / "configs" / f"{model}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(None)
    config.data.builder_config = builder_config
    config.data.data_dir = data_dir
    config.data.num_workers = workers
    config.data.device_augment = device_augment
    return config


def pipeline_rate(
    model: str, data_dir: str, builder_config: str, workers: int, batches: int, device_augment: bool = True
) -> tuple[float, float]:
    """(images / s, images per CPU-second of this process)."""
    config = _config(model, data_dir, builder_config, workers, device_augment)
    it = iter(make_dataset(config, "train", make_task(config).transform(), train=True, batch_size=BATCH, seed=0))
    next(it)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(it)
    n = batches * BATCH
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu)


def render_rate(batches: int) -> float:
    head = head_assets(0)
    list(synthetic_heads.render_examples(head, "train", 0, synthetic_heads.RENDER_BATCH, 256))
    start = time.perf_counter()
    for b in range(batches):
        list(synthetic_heads.render_examples(head, "train", (b + 1) * 32, synthetic_heads.RENDER_BATCH, 256))
    return batches * synthetic_heads.RENDER_BATCH / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default=os.environ.get("JAXHEAD_DATA", "data"))
    p.add_argument("--config", default="small")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    ensure_built("synthetic_heads", args.config, args.data_dir)
    rows = []
    for model in ("trg", "dad3dnet"):
        for workers in (0, 1, 2):
            for device in (False, True):
                rate, cpu_rate = pipeline_rate(model, args.data_dir, args.config, workers, args.batches, device)
                per_cpu = f"{cpu_rate:.0f}" if workers == 0 else "–"
                rows.append(f"| {model} | {'device' if device else 'host'} | {workers} | {rate:.0f} "
                            f"| {rate / max(workers, 1):.0f} | {per_cpu} |")
                print(rows[-1], flush=True)
    build = render_rate(max(args.batches // 4, 2))
    machine = f"{os.cpu_count()}-core {platform.machine()} ({platform.processor() or 'cpu'}), CPU only"
    table = (
        f"{SECTION}\n\n`python experiments/benchmarks/pipeline_bench.py --config {args.config} --batches {args.batches}`: "
        f"training pipelines, augmentation on the host (numpy) or the device (the host decodes), batches of {BATCH}, "
        f"after a warm-up batch. Machine: {machine}.\n\n"
        "| pipeline | augmentation | workers | images / s | images / s per worker | images per CPU-second |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows)
        + f"\n\nsynthetic_heads rendering at 256 px (LBS, rasterizer, shading, backgrounds, occluders, JPEG): "
        f"**{build:.0f} images/s** (the `small` build, 2,560 images, takes about {2560 / build:.0f} s of rendering).\n"
    )
    print(table)
    if args.write:
        write_section(SECTION, table)


if __name__ == "__main__":
    main()
