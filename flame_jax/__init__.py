"""flame_jax: a pure-functional FLAME layer and the head-geometry math of TRG and DAD-3DNet.

Everything here is a pure function of arrays and pytrees: jit, vmap and grad work throughout.
"""

from flame_jax.io import load_embeddings, load_flame, load_flame_arrays, load_flame_for_dad3dheads
from flame_jax.landmarks import barycentric_points, contour_yaw_bin, landmarks_68, vertex_subset
from flame_jax.lbs import forward_kinematics, lbs
from flame_jax.model import FlameModel, build_flame_model

__all__ = [
    "FlameModel",
    "barycentric_points",
    "build_flame_model",
    "contour_yaw_bin",
    "forward_kinematics",
    "landmarks_68",
    "lbs",
    "load_embeddings",
    "load_flame",
    "load_flame_arrays",
    "load_flame_for_dad3dheads",
    "vertex_subset",
]
