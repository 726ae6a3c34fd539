"""A slow reference rasterizer for the tests: per-pixel loops over the faces, float64 edge functions.

It follows the rules documented in flame_jax/render/rasterizer.py (pixel centres at x + 0.5, top-left
fill rule, nearest depth wins with the lower face index on exact ties, faces skipped behind `near`,
degenerate or non-finite, optional culling of clockwise faces) but shares no code with it: no tiles,
no scatter, edge functions taken in the face's own vertex order, and a plain comparison per pixel.
"""

from __future__ import annotations

import numpy as np


def _edge(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> float:
    """Twice the signed area of (a, b, p): > 0 when p lies right of a->b as seen in the image (y down)."""
    return float((b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]))


def _owns_edge(a: np.ndarray, b: np.ndarray, positive_inside: bool) -> bool:
    """Top-left rule: does the face's edge a->b own the pixel centres exactly on it?

    A top edge is horizontal with the face below it (y down), a left edge has the face to its right.
    `positive_inside` says whether `_edge(a, b, p)` is positive for p inside the face.
    """
    dx, dy = b[0] - a[0], b[1] - a[1]
    if not positive_inside:  # walk the edge the other way so the face is on its right
        dx, dy = -dx, -dy
    return bool(dy < 0 or (dy == 0 and dx > 0))


def rasterize_reference(
    verts_screen: np.ndarray,
    faces: np.ndarray,
    height: int,
    width: int,
    cull_backfaces: bool = False,
    near: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns tri_id (H, W) int (-1 background), bary (H, W, 3) perspective-correct, depth (H, W) (0 off)."""
    verts = np.asarray(verts_screen, np.float64)
    faces = np.asarray(faces)
    tri_id = np.full((height, width), -1, np.int64)
    bary = np.zeros((height, width, 3))
    depth = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            p = np.array([x + 0.5, y + 0.5])
            best_z = np.inf
            for f, (i0, i1, i2) in enumerate(faces):
                v = verts[[i0, i1, i2]]
                if not np.all(np.isfinite(v)) or np.any(v[:, 2] <= near):
                    continue
                area = _edge(v[0, :2], v[1, :2], v[2, :2])
                if area == 0 or (cull_backfaces and area > 0):
                    continue
                lam = np.empty(3)
                covered = True
                for k in range(3):
                    a, b = v[(k + 1) % 3, :2], v[(k + 2) % 3, :2]
                    e = _edge(a, b, p) * np.sign(area)
                    if e < 0 or (e == 0 and not _owns_edge(a, b, area > 0)):
                        covered = False
                        break
                    lam[k] = e / abs(area)
                if not covered:
                    continue
                inv_z = float(np.sum(lam / v[:, 2]))
                z = 1.0 / inv_z
                if z < best_z:  # strict: on an exact tie the lower face index stays
                    best_z = z
                    tri_id[y, x] = f
                    bary[y, x] = (lam / v[:, 2]) / inv_z
                    depth[y, x] = z
    return tri_id, bary, depth
