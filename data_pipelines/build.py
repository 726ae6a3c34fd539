"""Build a dataset: `python -m data_pipelines.build NAME [--data_dir D] [--manual_dir M] [--config C]`.

The `tfds build` CLI imports TensorFlow, so this is the TF-free equivalent. A build is atomic
(TFDS writes into `incomplete.*` and renames it when done) and idempotent (a finished dataset
is left alone).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import tensorflow_datasets as tfds

from data_pipelines.builders import BUILDERS, builder_class


def default_data_dir() -> str:
    return os.environ.get("JAXHEAD_DATA", "data")


def make_builder(
    name: str, builder_config: str | None = None, data_dir: str | None = None
) -> tfds.core.DatasetBuilder:
    cls = builder_class(name)
    configs = [c.name for c in (cls.BUILDER_CONFIGS or [])]
    if builder_config and builder_config not in configs:
        raise ValueError(f"dataset {name} has no config {builder_config!r}; choose one of {configs}")
    kwargs = dict(config=builder_config) if builder_config else {}
    return cls(data_dir=data_dir or default_data_dir(), **kwargs)


def ensure_built(
    name: str, builder_config: str | None = None, data_dir: str | None = None, manual_dir: str | None = None
) -> tfds.core.DatasetBuilder:
    """Builds the dataset unless a finished build exists; returns its builder."""
    builder = make_builder(name, builder_config, data_dir)
    if builder.is_prepared():
        return builder
    label = f"{name}/{builder.builder_config.name}" if builder.builder_config else name
    print(f"building dataset {label} into {builder.data_dir} (first use) ...", file=sys.stderr, flush=True)
    start = time.time()
    config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
    builder.download_and_prepare(download_config=config, file_format="array_record")
    sizes = {s: info.num_examples for s, info in builder.info.splits.items()}
    print(f"built {label} in {time.time() - start:.0f} s: {sizes}", file=sys.stderr, flush=True)
    return builder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(BUILDERS))
    parser.add_argument("--data_dir", default=None, help="where datasets live (default $JAXHEAD_DATA or ./data)")
    parser.add_argument("--manual_dir", default=None, help="the downloaded source files of a manual dataset")
    parser.add_argument("--config", default=None, help="builder config (synthetic_heads: tiny, small, default)")
    args = parser.parse_args(argv)
    try:
        ensure_built(args.name, args.config, args.data_dir, args.manual_dir)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
