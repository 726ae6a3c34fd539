"""Per-vertex albedo of the synthetic head: regions that make the pose visible in a render."""

from __future__ import annotations

import numpy as np

from flame_jax.synthetic.geometry import EYE_CENTRES, Mesh

REGION_NAMES = ("skin", "hair", "brow", "lips", "sclera", "iris", "pupil")
REGION_COLOURS = np.array(
    [
        [0.86, 0.67, 0.56],  # skin
        [0.23, 0.15, 0.10],  # hair
        [0.28, 0.19, 0.13],  # brow
        [0.74, 0.36, 0.36],  # lips
        [0.95, 0.95, 0.93],  # sclera
        [0.30, 0.47, 0.62],  # iris
        [0.04, 0.04, 0.05],  # pupil
    ]
)


def regions(mesh: Mesh) -> np.ndarray:
    """(V,) region id into REGION_NAMES for every vertex."""
    v = mesh.vertices
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    ax = np.abs(x)
    out = np.zeros(len(v), np.int32)
    shell = mesh.part == 0
    # Hair: the scalp above the forehead and the back of the head down to the nape, not the ears.
    hairline = 0.062 + 0.02 * np.clip(z / 0.05, 0.0, 1.0)
    hair = shell & ((y > hairline) | ((z < -0.075) & (y > -0.07))) & ~((ax > 0.068) & (np.abs(y) < 0.03))
    out[hair] = 1
    brow_y = 0.043 - 8.0 * (ax - 0.03) ** 2
    brow = shell & (z > 0.0) & (ax > 0.008) & (ax < 0.054) & (np.abs(y - brow_y) < 0.0045)
    out[brow] = 2
    lips = shell & (z > 0.0) & ((x / 0.025) ** 2 + ((y + 0.052) / 0.0105) ** 2 < 1.0)
    out[lips] = 3
    for part, centre in ((1, EYE_CENTRES[0]), (2, EYE_CENTRES[1])):
        sel = mesh.part == part
        d = v[sel] - centre
        angle = np.degrees(np.arccos(np.clip(d[:, 2] / np.linalg.norm(d, axis=1), -1.0, 1.0)))
        out[sel] = np.where(angle < 12.0, 6, np.where(angle < 30.0, 5, 4))
    return out


def albedo(region: np.ndarray) -> np.ndarray:
    """(V,) region ids -> (V, 3) float32 RGB in [0, 1]."""
    return REGION_COLOURS[region].astype(np.float32)
