"""Reports a run leaves behind: the metrics table (markdown + JSON) and training curves (PNG)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import ml_collections  # noqa: E402

from jaxhead.training.metric_log import read_metrics  # noqa: E402


def atomic_write(path: Path, text: str) -> None:
    """Writes `text` to `path` through a temporary file and a rename: readers see the old file or
    the new one, never a part. The file gets the usual permissions (mkstemp's are owner-only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def markdown_table(rows: dict[str, dict[str, float]]) -> str:
    """{row name: {metric: value}} -> a markdown table with one column per metric."""
    keys = list(dict.fromkeys(k for r in rows.values() for k in r))
    lines = ["| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{r[k]:.4g}" if k in r else "–" for k in keys) + " |")
    return "\n".join(lines) + "\n"


def write_eval_report(
    out_dir: Path, name: str, result: dict[str, Any], config: ml_collections.ConfigDict
) -> tuple[Path, Path]:
    """Writes `out_dir/name.md` and `out_dir/name.json` with the model (and baseline) metrics."""
    rows = {"model": result["summary"]}
    if "baseline" in result:
        rows["mean-prediction baseline"] = result["baseline"]
    n = len(next(iter(result["per_sample"].values())))
    md = f"# {config.model.name} on {config.data.dataset} ({name}, {n} examples)\n\n" + markdown_table(rows)
    payload = {"model": config.model.name, "dataset": config.data.dataset, "split": name, "num_examples": n, **rows}
    md_path, json_path = out_dir / f"{name}.md", out_dir / f"{name}.json"
    atomic_write(md_path, md)
    atomic_write(json_path, json.dumps(payload, indent=2))
    return md_path, json_path


def write_training_curves(workdir: Path) -> Path | None:
    """Plots every logged scalar of metrics.jsonl against the step into `curves.png`."""
    entries = read_metrics(workdir)
    if not entries:
        return None
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for e in entries:
        for k, v in e.items():
            if k not in ("step", "split"):
                series.setdefault((e["split"], k), []).append((e["step"], v))
    names = sorted({k for _, k in series})
    splits = sorted({sp for sp, _ in series}, key=lambda sp: sp != "train")
    cols = min(4, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for split in splits:
            pts = series.get((split, name))
            if pts:
                ax.plot(*zip(*pts), marker=None if split == "train" else ".", label=split)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        if name.startswith("loss") or name == "grad_norm":
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    path = workdir / "curves.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
