"""Contact sheet of what a model sees: `python -m jaxhead.show NAME --split train --n 16 --out sheet.png`.

Draws the preprocessed crops (augmented for `--split train`) with their labels (landmarks, mesh,
pose axes: the task's `draw_example`) through the input pipeline of `--model` (default trg).
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import ml_collections

from data_pipelines.build import ensure_built
from data_pipelines.pipelines import make_dataset
from jaxhead import visualize
from jaxhead.tasks import make_task


def load_config(model: str, dataset: str, builder_config: str | None, data_dir: str | None) -> ml_collections.ConfigDict:
    path = Path(__file__).resolve().parents[1] / "configs" / f"{model}.py"
    spec = importlib.util.spec_from_file_location(f"configs_{model}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(None)
    config.data.dataset = dataset
    config.data.builder_config = builder_config if builder_config is not None else ("small" if dataset == "synthetic_heads" else "")
    config.data.data_dir = data_dir or ""
    config.data.num_workers = 0
    return config


def contact_sheet(config: ml_collections.ConfigDict, split: str, n: int, out: Path, seed: int = 0) -> Path:
    # The host path draws the same augmentation the device applies (tests/data_pipelines/test_device_augment.py).
    config = config.copy_and_resolve_references()
    config.data.device_augment = False
    task = make_task(config)
    data = make_dataset(config, split, task.transform(), train=split == "train", batch_size=n, seed=seed, num_epochs=1)
    batch = next(iter(data))
    fig, axes = visualize.image_grid(len(batch["id"]), cols=min(n, 8))
    for i, ax in enumerate(axes[: len(batch["id"])]):
        task.draw_example(ax, batch, i)
    return visualize.save_figure(fig, out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="dataset name (e.g. synthetic_heads)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--out", default="sheet.png")
    parser.add_argument("--model", default="trg", help="whose pipeline to show: a config file configs/MODEL.py")
    parser.add_argument("--config", default=None, help="builder config (synthetic_heads: tiny, small, default)")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--manual_dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = load_config(args.model, args.name, args.config, args.data_dir)
    ensure_built(args.name, config.data.builder_config or None, args.data_dir, args.manual_dir)
    print(contact_sheet(config, args.split, args.n, Path(args.out), args.seed))


if __name__ == "__main__":
    main()
