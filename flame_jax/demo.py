r"""Renders of the synthetic head model: `python -m flame_jax.demo --out DIR`.

Writes one PNG per case (neutral; identity and expression extremes; jaw open; global
poses) with the 68 landmarks drawn, and `sheet.png` with all of them. matplotlib
painter's-algorithm rendering with Lambert shading of the albedo; no JAX renderer
needed, so flame_jax stays free of jaxhead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

from flame_jax.landmarks import landmarks_68  # noqa: E402
from flame_jax.lbs import lbs  # noqa: E402
from flame_jax.synthetic import NUM_EXPR, NUM_SHAPE, SyntheticHead, head_assets  # noqa: E402

LIGHT = np.array([0.35, 0.45, 1.0]) / np.linalg.norm([0.35, 0.45, 1.0])


def _pose(global_rot: tuple[float, float, float] = (0, 0, 0), jaw: float = 0.0) -> np.ndarray:
    p = np.zeros(15)
    p[0:3] = np.radians(global_rot)
    p[6] = jaw
    return p


def cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (betas (400,), full_pose (15,)) of the demo renders."""
    z = np.zeros(NUM_SHAPE + NUM_EXPR)

    def b(shape: dict[int, float] = {}, expr: dict[int, float] = {}) -> np.ndarray:  # noqa: B006
        out = z.copy()
        for k, v in shape.items():
            out[k] = v
        for k, v in expr.items():
            out[NUM_SHAPE + k] = v
        return out

    rng = np.random.default_rng(7)
    return {
        "neutral": (z, _pose()),
        "identity_0_+2": (b({0: 2.0}), _pose()),
        "identity_0_-2": (b({0: -2.0}), _pose()),
        "identity_random": (b({k: v for k, v in enumerate(2.0 * rng.standard_normal(NUM_SHAPE))}), _pose()),
        "expression_+2": (b(expr={k: 2.0 for k in range(10)}), _pose()),
        "expression_-2": (b(expr={k: -2.0 for k in range(10)}), _pose()),
        "jaw_open": (z, _pose(jaw=0.35)),
        "yaw_+60": (z, _pose((0, 60, 0))),
        "yaw_-60": (z, _pose((0, -60, 0))),
        "pitch_+30": (z, _pose((30, 0, 0))),
        "pitch_-30": (z, _pose((-30, 0, 0))),
        "roll_30": (z, _pose((0, 0, 30))),
    }


def draw_head(ax: Axes, vertices: np.ndarray, faces: np.ndarray, albedo: np.ndarray, lmk: np.ndarray | None) -> None:
    """Orthographic view from +z of a mesh (V, 3) with per-vertex albedo, landmarks (68, 3) on top."""
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    order = np.argsort(tri[:, :, 2].mean(axis=1))
    order = order[n[order, 2] > 0]  # back faces are hidden on a closed mesh
    shade = 0.3 + 0.7 * np.clip(n @ LIGHT, 0.0, 1.0)
    colour = np.clip(albedo[faces].mean(axis=1) * shade[:, None], 0.0, 1.0)
    ax.add_collection(PolyCollection(tri[order, :, :2], facecolors=colour[order], edgecolors="none"))
    if lmk is not None:
        ax.scatter(lmk[:, 0], lmk[:, 1], s=6, c="#ffeb3b", edgecolors="black", linewidths=0.3, zorder=3)
    # Global rotations pivot at the base of the neck (FLAME's root): centre the view on the head.
    cx, cy = vertices[:, :2].min(axis=0) / 2 + vertices[:, :2].max(axis=0) / 2
    ax.set_xlim(cx - 0.15, cx + 0.15)
    ax.set_ylim(cy - 0.19, cy + 0.19)
    ax.set_aspect("equal")
    ax.axis("off")


def render(head: SyntheticHead, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    model = head.model
    faces = np.asarray(model.faces)
    items = cases()
    fig_all, axes = plt.subplots(2, (len(items) + 1) // 2, figsize=(2.4 * ((len(items) + 1) // 2), 6.2))
    paths = []
    for ax_all, (name, (betas, pose)) in zip(axes.flat, items.items()):
        v, _ = lbs(model, jnp.asarray(betas, jnp.float32), jnp.asarray(pose, jnp.float32))
        lmk = np.asarray(landmarks_68(model, v, jnp.asarray(pose, jnp.float32)))
        v = np.asarray(v)
        fig, ax = plt.subplots(figsize=(3.2, 4.2))
        draw_head(ax, v, faces, head.albedo, lmk)
        ax.set_title(name, fontsize=9)
        paths.append(out / f"{name}.png")
        fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
        plt.close(fig)
        draw_head(ax_all, v, faces, head.albedo, lmk)
        ax_all.set_title(name, fontsize=8)
    fig_all.tight_layout()
    paths.append(out / "sheet.png")
    fig_all.savefig(paths[-1], dpi=100)
    plt.close(fig_all)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output directory for the PNGs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic head model")
    args = parser.parse_args()
    for p in render(head_assets(args.seed), args.out):
        print(p)


if __name__ == "__main__":
    main()
