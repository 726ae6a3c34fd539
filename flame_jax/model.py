"""The `FlameModel` pytree: every array the FLAME layer needs, and nothing else.

Shapes use V vertices, F triangles, J = 5 joints, K = S + E active blendshape
components (shape first, then expression).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

NUM_JOINTS = 5
# FLAME's kinematic tree: root, neck, jaw, left eye, right eye.
FLAME_PARENTS = (-1, 0, 1, 1, 1)
NUM_POSE_FEATURES = 9 * (NUM_JOINTS - 1)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class FlameModel:
    """A FLAME-format head model as a pytree of arrays.

    Pass it to jitted functions as an ordinary argument: one compilation then
    serves any model with the same shapes. `n_shape` and `n_expr` are static.

    Attributes:
      v_template: (V, 3) mean head, metres; y up, face toward +z, +x = subject's left.
      shapedirs: (V, 3, S+E) identity then expression blendshapes.
      posedirs: (V, 3, 36) pose correctives for joints 1..4 (row-major R - I).
      J_regressor: (5, V) dense joint regressor, rows sum to 1.
      weights: (V, 5) LBS weights, rows sum to 1.
      parents: (5,) int32 kinematic parents, [-1, 0, 1, 1, 1].
      faces: (F, 3) int32 triangles, counter-clockwise seen from outside.
      lmk_faces: (51,) int32 static landmark triangles (iBUG points 18-68), or None.
      lmk_bary: (51, 3) static landmark barycentric weights, or None.
      dyn_lmk_faces: (79, 17) int32 contour triangles per yaw bin, or None.
      dyn_lmk_bary: (79, 17, 3) contour barycentric weights per yaw bin, or None.
      J_template: (5, 3) J_regressor @ v_template (precomputed).
      J_shapedirs: (5, 3, S+E) J_regressor applied to each blendshape (precomputed).
      subsets: named int32 vertex-index arrays, e.g. DAD-3DHeads' `face`, `head`, `face_w_ears`.
      n_shape: number of active identity components S.
      n_expr: number of active expression components E.
    """

    v_template: jax.Array
    shapedirs: jax.Array
    posedirs: jax.Array
    J_regressor: jax.Array
    weights: jax.Array
    parents: jax.Array
    faces: jax.Array
    lmk_faces: jax.Array | None
    lmk_bary: jax.Array | None
    dyn_lmk_faces: jax.Array | None
    dyn_lmk_bary: jax.Array | None
    J_template: jax.Array
    J_shapedirs: jax.Array
    subsets: dict[str, jax.Array] = dataclasses.field(default_factory=dict)
    n_shape: int = dataclasses.field(metadata=dict(static=True), default=0)
    n_expr: int = dataclasses.field(metadata=dict(static=True), default=0)

    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]


def build_flame_model(
    *,
    v_template: np.ndarray,
    shapedirs: np.ndarray,
    posedirs: np.ndarray,
    J_regressor: np.ndarray,
    weights: np.ndarray,
    faces: np.ndarray,
    lmk_faces: np.ndarray | None,
    lmk_bary: np.ndarray | None,
    dyn_lmk_faces: np.ndarray | None,
    dyn_lmk_bary: np.ndarray | None,
    n_shape: int,
    subsets: dict[str, np.ndarray] | None = None,
    n_expr: int,
    shape_offset: int = 0,
    expr_offset: int | None = None,
    dtype: jnp.dtype = jnp.float32,
) -> FlameModel:
    """Assembles a `FlameModel`, selecting the active components and precomputing joint bases.

    Args:
      shapedirs: (V, 3, N) full basis. Identity columns start at `shape_offset`,
        expression columns at `expr_offset` (FLAME files: 0 and 300; the
        default is right after the active identity block).
      n_shape, n_expr: active components S and E.
      lmk_*, dyn_lmk_*: landmark embeddings, or None when the model has none.
      Other arrays: as the `FlameModel` attributes, any float dtype.

    Returns:
      A `FlameModel` with shapedirs (V, 3, S+E) in `dtype`.
    """
    if expr_offset is None:
        expr_offset = shape_offset + n_shape
    full = np.asarray(shapedirs, np.float64)
    basis = np.concatenate(
        [full[..., shape_offset : shape_offset + n_shape], full[..., expr_offset : expr_offset + n_expr]],
        axis=-1,
    )
    if basis.shape[-1] != n_shape + n_expr:
        raise ValueError(
            f"shapedirs has {full.shape[-1]} columns; cannot take {n_shape} shape columns at {shape_offset} "
            f"and {n_expr} expression columns at {expr_offset}"
        )
    J_reg = np.asarray(J_regressor, np.float64)
    J_template = J_reg @ np.asarray(v_template, np.float64)
    J_shapedirs = np.einsum("jv,vkl->jkl", J_reg, basis)

    def f(x: np.ndarray | None) -> jax.Array | None:
        return None if x is None else jnp.asarray(np.asarray(x, np.float64), dtype)

    def i(x: np.ndarray | None) -> jax.Array | None:
        return None if x is None else jnp.asarray(np.asarray(x), jnp.int32)

    return FlameModel(
        v_template=f(v_template),
        shapedirs=f(basis),
        posedirs=f(posedirs),
        J_regressor=f(J_reg),
        weights=f(weights),
        parents=i(FLAME_PARENTS),
        faces=i(faces),
        lmk_faces=i(lmk_faces),
        lmk_bary=f(lmk_bary),
        dyn_lmk_faces=i(dyn_lmk_faces),
        dyn_lmk_bary=f(dyn_lmk_bary),
        J_template=f(J_template),
        J_shapedirs=f(J_shapedirs),
        subsets={k: i(v) for k, v in (subsets or {}).items()},
        n_shape=n_shape,
        n_expr=n_expr,
    )
