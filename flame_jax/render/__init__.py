"""Triangle rasterization and Lambert shading in pure JAX (jit- and vmap-able)."""

from flame_jax.render.rasterizer import Fragments, rasterize, tile_capacity, tile_counts
from flame_jax.render.shading import (
    Render,
    composite,
    interpolate,
    lambert,
    project_to_screen,
    render_lambert,
    vertex_normals,
)

__all__ = [
    "Fragments",
    "Render",
    "composite",
    "interpolate",
    "lambert",
    "project_to_screen",
    "rasterize",
    "render_lambert",
    "tile_capacity",
    "tile_counts",
    "vertex_normals",
]
