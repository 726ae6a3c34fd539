"""Small random FLAME-format models for tests (any V; FLAME's 5-joint tree)."""

from __future__ import annotations

import numpy as np

from flame_jax.model import FLAME_PARENTS


def random_flame_arrays(seed: int = 0, V: int = 40, N: int = 400) -> dict[str, np.ndarray]:
    """Arrays in the official pickle's layout: f, kintree_table with the uint32 root sentinel, ..."""
    rng = np.random.default_rng(seed)
    J_reg = rng.uniform(0, 1, (5, V))
    weights = rng.uniform(0, 1, (V, 5)) ** 3
    kintree = np.array([FLAME_PARENTS, range(5)], np.int64)
    kintree[0, 0] = 2**32 - 1
    return dict(
        v_template=rng.normal(0, 0.1, (V, 3)),
        f=rng.integers(0, V, (2 * V, 3)).astype(np.uint32),
        shapedirs=rng.normal(0, 0.01, (V, 3, N)),
        posedirs=rng.normal(0, 0.01, (V, 3, 36)),
        J_regressor=J_reg / J_reg.sum(1, keepdims=True),
        weights=weights / weights.sum(1, keepdims=True),
        kintree_table=kintree.astype(np.uint32),
    )
