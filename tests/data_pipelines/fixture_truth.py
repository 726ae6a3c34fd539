"""Known ground truth for the real-format builder fixtures, made from the synthetic head model."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image
from scipy.spatial.transform import Rotation

from data_pipelines.build import ensure_built
from flame_jax.lbs import lbs
from flame_jax.synthetic import head_assets

F = np.diag([1.0, -1.0, -1.0])


def posed_head(seed: int) -> dict[str, np.ndarray]:
    """Model-space vertices (V, 3), the 1220 face-region ids, and an OpenCV pose (R, t) facing the camera."""
    head = head_assets(0)
    rng = np.random.default_rng(seed)
    betas = jnp.asarray(rng.normal(0, 1, 400), jnp.float32)
    v = np.asarray(lbs(head.model, betas, jnp.zeros(15))[0], np.float64)
    R = Rotation.from_euler("yxz", rng.uniform(-40, 40, 3), degrees=True).as_matrix()
    t = np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), rng.uniform(0.5, 0.9)])
    return dict(vertices=v, face_region=np.asarray(head.face_region), R=R, t=t)


def write_image(path: Path, size: tuple[int, int] = (48, 64), seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, size + (3,), dtype=np.uint8)).save(path)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def build(name: str, manual_dir: Path, data_dir: Path) -> dict[str, dict[str, dict]]:
    """Builds the fixture; returns {split: {id: example}}."""
    ensure_built(name, None, str(data_dir), str(manual_dir))
    sources = tfds.data_source(name, data_dir=str(data_dir))
    out = {}
    for split in sources:
        src = sources[split]
        out[split] = {}
        for i in range(len(src)):
            ex = src[i]
            out[split][ex["id"].decode() if isinstance(ex["id"], bytes) else str(ex["id"])] = ex
    return out


def pinhole(K: np.ndarray, R: np.ndarray, t: np.ndarray, X: np.ndarray) -> np.ndarray:
    cam = X @ np.asarray(R, np.float64).T + t
    return cam[:, :2] / cam[:, 2:] * [K[0, 0], K[1, 1]] + np.asarray(K, np.float64)[:2, 2]
