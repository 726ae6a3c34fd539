"""Drawing predictions over images with matplotlib: mesh wireframes, pose axes, landmarks.

Pure helpers on numpy arrays; used by the tasks' prediction sheets, `jaxhead.predict`
and `jaxhead.show`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from data_pipelines.image_ops import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402

# x, y, z axes in red, green, blue.
AXIS_COLOURS = ("#e41a1c", "#4daf4a", "#377eb8")


def denormalize(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) ImageNet-normalised float -> (H, W, 3) float in [0, 1]."""
    return np.clip(image * IMAGENET_STD + IMAGENET_MEAN, 0.0, 1.0)


def mesh_edges(triangles: np.ndarray) -> np.ndarray:
    """(T, 3) triangles -> (E, 2) unique undirected edges."""
    e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def project(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame points, (3, 3) K -> (N, 2) pixels."""
    uvw = points_cam @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


def draw_wireframe(
    ax: Axes, points_2d: np.ndarray, edges: np.ndarray, colour: str = "#00e5ff", alpha: float = 0.35, lw: float = 0.3
) -> None:
    ax.add_collection(LineCollection(points_2d[edges], colors=colour, linewidths=lw, alpha=alpha))


def draw_axes(
    ax: Axes, R: np.ndarray, t: np.ndarray, K: np.ndarray, length: float = 0.08, lw: float = 2.0
) -> None:
    """Draws the head-frame axes (x red, y green, z blue) of pose (R, t) seen through K."""
    ends = np.concatenate([np.zeros((1, 3)), length * np.eye(3)]) @ R.T + t
    if np.any(ends[:, 2] <= 1e-6):
        return
    uv = project(ends, K)
    for i, colour in enumerate(AXIS_COLOURS):
        ax.plot(*zip(uv[0], uv[i + 1]), color=colour, linewidth=lw)


def draw_landmarks(ax: Axes, points_2d: np.ndarray, colour: str = "#ffeb3b", size: float = 4.0) -> None:
    ax.scatter(points_2d[:, 0], points_2d[:, 1], s=size, c=colour, edgecolors="black", linewidths=0.3)


def image_grid(n: int, cell: float = 2.6, cols: int | None = None) -> tuple[plt.Figure, Sequence[Axes]]:
    cols = cols or min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cell * cols, cell * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, list(axes.flat)


def show_image(ax: Axes, image: np.ndarray, title: str | None = None) -> None:
    ax.imshow(image)
    ax.set_xlim(0, image.shape[1])
    ax.set_ylim(image.shape[0], 0)
    if title:
        ax.set_title(title, fontsize=7)


def save_figure(fig: plt.Figure, path: str | Path, dpi: int = 110) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
