r"""The synthetic out-of-distribution shift as TRG's Fig. 3 draws it: camera distance tz, focal
length and the box-correction scale s per split of `synthetic_heads`.

    python experiments/datasets/ood_shift.py [--config small] [--data_dir DIR] \
        [--out docs/images/synthetic_ood_shift.png]

s = tz b / (0.2 f) is TRG's Eq. 2 solved for s, with b the side of the test-time box (the square
around the 68 landmarks times `box_scale`, as the TRG pipeline crops). Prints a table of medians and
5-95 % ranges (the one in docs/datasets.md) and writes the histograms.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from data_pipelines.build import default_data_dir, ensure_built  # noqa: E402
from data_pipelines.config import trg_data_config  # noqa: E402
from data_pipelines.pipelines.trg import landmark_box  # noqa: E402
from flame_jax.projection import TRG_BOX_METRES  # noqa: E402

SPLITS = ("train", "test", "test_ood")
COLOURS = {"train": "tab:blue", "test": "tab:green", "test_ood": "tab:red"}


def split_quantities(source, box_scale: float) -> dict[str, np.ndarray]:
    """tz (m), f (px) and s of every example of one split (the arrays are (N,))."""
    tz, f, b = [], [], []
    for i in range(len(source)):
        ex = source[i]
        box = landmark_box(ex["landmarks_2d"].astype(np.float64), box_scale)
        tz.append(float(ex["t"][2]))
        f.append(float(ex["K"][0, 0]))
        b.append(box[2] - box[0])
    tz, f, b = np.array(tz), np.array(f), np.array(b)
    return dict(tz=tz, f=f, s=tz * b / (TRG_BOX_METRES * f))


def stats_table(q: dict[str, dict[str, np.ndarray]]) -> str:
    rows = ["| split | n | tz (m) median [5-95 %] | f (px) median [5-95 %] | s median [5-95 %] |", "|---|---|---|---|---|"]
    for split, v in q.items():
        cells = []
        for key, fmt in (("tz", "{:.2f}"), ("f", "{:.0f}"), ("s", "{:.3f}")):
            lo, med, hi = np.percentile(v[key], [5, 50, 95])
            cells.append(f"{fmt.format(med)} [{fmt.format(lo)}-{fmt.format(hi)}]")
        rows.append(f"| {split} | {len(v['tz'])} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(q: dict[str, dict[str, np.ndarray]], out: Path, title: str) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (key, label) in zip(axes, (("tz", "translation tz (m)"), ("f", "focal length f (px)"), ("s", "box-correction scale s"))):
        edges = np.histogram_bin_edges(np.concatenate([v[key] for v in q.values()]), bins=40)
        for split, v in q.items():
            ax.hist(v[key], bins=edges, density=True, alpha=0.45, color=COLOURS[split], label=split)
        ax.set_xlabel(label)
        ax.set_yticks([])
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="small", help="synthetic_heads build (tiny, small, default)")
    p.add_argument("--data_dir", default=None, help="where datasets live (default $JAXHEAD_DATA or ./data)")
    p.add_argument("--out", type=Path, default=REPO / "docs/images/synthetic_ood_shift.png")
    args = p.parse_args()
    data_dir = args.data_dir or default_data_dir()
    ensure_built("synthetic_heads", args.config, data_dir)
    sources = tfds.data_source(f"synthetic_heads/{args.config}", data_dir=data_dir)
    box_scale = float(trg_data_config().box_scale)
    q = {split: split_quantities(sources[split], box_scale) for split in SPLITS}
    print(stats_table(q))
    plot(q, args.out, f"synthetic_heads/{args.config}: the translation shifts out of range, s barely moves")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
