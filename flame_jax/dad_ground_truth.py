"""DAD-3DHeads ground-truth geometry in float64 numpy (spec dad3dnet.md): the fixed-contour
68-landmark embedding, model space -> world, and the OpenGL MV/P projection to image pixels.

numpy rather than JAX because the input pipeline's worker processes and the benchmark's
metrics use it; `flame_jax.projection.opengl_to_pixels` is the jittable twin of
`gt_landmarks_2d`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class LandmarkEmbedding:
    """The 68 iBUG landmarks as barycentric points, contour fixed at the frontal row (as DAD-3DHeads).

    Attributes:
      faces: (F, 3) int triangles of the mesh.
      face_idx: (68,) int triangle of each landmark, order [17 contour, 51 static].
      bary: (68, 3) barycentric weights.
    """

    faces: np.ndarray
    face_idx: np.ndarray
    bary: np.ndarray

    @classmethod
    def from_flame(cls, model: Any) -> LandmarkEmbedding:
        """From a `flame_jax.FlameModel` with landmark embeddings (dynamic row 0 + static)."""
        if model.lmk_faces is None or model.dyn_lmk_faces is None:
            raise ValueError("the FLAME model has no landmark embeddings (lmk_faces / dyn_lmk_faces)")
        face_idx = np.concatenate([np.asarray(model.dyn_lmk_faces[0]), np.asarray(model.lmk_faces)])
        bary = np.concatenate([np.asarray(model.dyn_lmk_bary[0]), np.asarray(model.lmk_bary)])
        return cls(np.asarray(model.faces), face_idx, bary.astype(np.float64))

    def __call__(self, vertices: np.ndarray) -> np.ndarray:
        """(..., V, D) -> (..., 68, D)."""
        corners = np.asarray(vertices, np.float64)[..., self.faces[self.face_idx], :]  # (..., 68, 3, D)
        return np.einsum("lk,...lkd->...ld", self.bary, corners)


def to_homogeneous_world(vertices: np.ndarray, model_view: np.ndarray) -> np.ndarray:
    """(N, 3) model-space vertices -> (N, 3) world = (MV [v; 1])[:3]."""
    v = np.asarray(vertices, np.float64)
    return v @ np.asarray(model_view, np.float64)[:3, :3].T + np.asarray(model_view, np.float64)[:3, 3]


def gt_landmarks_2d(
    landmarks_model: np.ndarray, model_view: np.ndarray, projection: np.ndarray, image_height: float
) -> np.ndarray:
    """(68, 3) model-space landmarks -> (68, 2) image pixels: clip = P MV [v; 1], (x/w, H - y/w)."""
    vh = np.concatenate([np.asarray(landmarks_model, np.float64), np.ones((len(landmarks_model), 1))], axis=1)
    clip = vh @ (np.asarray(projection, np.float64) @ np.asarray(model_view, np.float64)).T
    xy = clip[:, :2] / clip[:, 3:4]
    return np.stack([xy[:, 0], image_height - xy[:, 1]], axis=1)
