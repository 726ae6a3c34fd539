"""Small random FLAME-format models for the DAD-3DNet tests (no FLAME file needed)."""

from __future__ import annotations

import numpy as np

from flame_jax import FlameModel, build_flame_model


def random_flame(num_vertices: int, seed: int = 0, landmarks: bool = False) -> FlameModel:
    """A 300-shape / 100-expression model with `num_vertices` vertices and the DAD subsets
    `face` (V/2), `head` (3V/4), `face_w_ears` (7V/8); with `landmarks`, random 68-point
    embeddings over 3V triangles."""
    rng = np.random.default_rng(seed)
    V = num_vertices
    J = rng.uniform(size=(5, V))
    W = rng.uniform(size=(V, 5))
    F = 3 * V

    def bary(shape):
        b = rng.uniform(0.1, 1.0, size=shape + (3,))
        return b / b.sum(-1, keepdims=True)

    def subset(n):
        return np.sort(rng.choice(V, size=n, replace=False))

    return build_flame_model(
        v_template=rng.normal(scale=0.08, size=(V, 3)),
        shapedirs=rng.normal(scale=1e-3, size=(V, 3, 400)),
        posedirs=rng.normal(scale=1e-3, size=(V, 3, 36)),
        J_regressor=J / J.sum(1, keepdims=True),
        weights=W / W.sum(1, keepdims=True),
        faces=rng.integers(0, V, size=(F, 3)),
        lmk_faces=rng.integers(0, F, size=51) if landmarks else None,
        lmk_bary=bary((51,)) if landmarks else None,
        dyn_lmk_faces=rng.integers(0, F, size=(79, 17)) if landmarks else None,
        dyn_lmk_bary=bary((79, 17)) if landmarks else None,
        n_shape=300,
        n_expr=100,
        subsets={"face": subset(V // 2), "head": subset(3 * V // 4), "face_w_ears": subset(7 * V // 8)},
    )
