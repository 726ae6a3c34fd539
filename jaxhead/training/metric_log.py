"""Metric logging: `metrics.jsonl`, TensorBoard event files and a console progress bar.

Only process 0 writes. On resume, entries after the restored step are dropped so
the logs describe one consistent run.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np
import tqdm
from tensorboardX import SummaryWriter

METRICS_FILE = "metrics.jsonl"


def _records(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl; a torn last line (a write cut short, e.g. by a full disk) is
    dropped with a warning, a bad line elsewhere is an error naming the file and line."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    records = []
    for i, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i < len(lines):
                raise ValueError(f"{path}: line {i} is not JSON ({e}); fix or remove it") from None
            logging.warning("%s: dropping its torn last line %d (%r)", path, i, line[:80])
    return records


def _truncate_jsonl(path: Path, last_step: int) -> None:
    if not path.exists():
        return
    keep = [json.dumps(r) for r in _records(path) if r["step"] <= last_step]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".metrics.")
    with os.fdopen(fd, "w") as f:
        f.write("".join(line + "\n" for line in keep))
    os.replace(tmp, path)


def read_metrics(workdir: str | Path) -> list[dict[str, Any]]:
    path = Path(workdir) / METRICS_FILE
    if not path.exists():
        return []
    return _records(path)


class MetricLogger:
    """Writes scalars to `WORKDIR/metrics.jsonl` and `WORKDIR/tensorboard/`."""

    def __init__(self, workdir: str | Path, start_step: int = 0):
        self.enabled = jax.process_index() == 0
        self.path = Path(workdir) / METRICS_FILE
        self.writer = None
        if self.enabled:
            _truncate_jsonl(self.path, start_step)
            self.writer = SummaryWriter(str(Path(workdir) / "tensorboard"), purge_step=start_step + 1)

    def write(self, step: int, split: str, scalars: dict[str, Any]) -> None:
        if not self.enabled:
            return
        values = {k: float(np.asarray(v)) for k, v in scalars.items()}
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, "split": split, **values}) + "\n")
        for k, v in values.items():
            self.writer.add_scalar(f"{split}/{k}", v, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def progress_bar(total: int, initial: int, desc: str) -> tqdm.tqdm:
    """A step progress bar (rate and ETA); quieter when the output is not a terminal."""
    interactive = sys.stderr.isatty()
    return tqdm.tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="step",
        dynamic_ncols=True,
        mininterval=0.5 if interactive else 20.0,
        disable=jax.process_index() != 0,
    )
