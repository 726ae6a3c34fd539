"""Z-buffered triangle rasterization in pure JAX: coverage, depth, triangle id and barycentrics per pixel.

Screen space (docs/conventions.md): a vertex is (u, v, z) with (u, v) pixels, origin at the top-left
corner of the top-left pixel, and z > 0 its camera depth. Pixel (x, y) is sampled at its centre
(x + 0.5, y + 0.5).

How it works. Each triangle's pixel bounding box (clipped to the image) is cut into square tiles of
`tile` x `tile` pixels. Every (triangle, tile) pair is one row of a fixed-size work list of
`capacity` rows, so large triangles simply take more rows and need no special case. For every pixel
of every row the edge functions decide coverage and the face's plane gives 1/z; a scatter-max builds
the z-buffer (nearest = largest 1/z), a second scatter-min picks the lowest face index among the
fragments that reach it, and the barycentrics of the winners are recomputed per pixel (this last
step is differentiable in the vertices; which face is visible is not). `capacity` is static;
`tile_capacity` computes it on the host from the concrete mesh, and `Fragments.overflow` flags a work
list that was too short. Under vmap the batch shares one work list of batch * capacity rows and one
flat z-buffer, which XLA runs much faster than a batched scatter.

Rules:
- Coverage uses the top-left fill rule: a pixel centre exactly on an edge belongs to the triangle
  for which that edge is a top edge (horizontal, interior below) or a left edge (interior to the
  right). Each edge function is evaluated from its endpoints in vertex-index order, so two triangles
  sharing an edge compute exactly opposite values: a mesh has no cracks and no pixel drawn twice.
- Front-facing triangles run counter-clockwise as seen in the image (y down), which is the case for
  a mesh with outward counter-clockwise faces in a right-handed frame seen by an OpenCV camera.
  Back-face culling is off by default (open meshes such as a head show their inside through holes).
- Depth test: the face with the largest 1/z at the pixel centre wins; faces within a few float32
  ulps of it count as tied (XLA may round the two evaluations of 1/z differently), and among tied
  faces the lowest index wins.
- Triangles with a vertex at z <= `near`, with a non-finite vertex, or with zero screen area are
  skipped; there is no near-plane clipping.
- Barycentrics are perspective-correct: interpolating camera-frame positions with them gives the
  3D point seen through the pixel centre.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Fragments(NamedTuple):
    """What each pixel sees.

    tri_id: (..., H, W) int32 index of the visible face, -1 for background.
    bary: (..., H, W, 3) float32 perspective-correct barycentrics of the visible face (0 on background).
    depth: (..., H, W) float32 camera depth z of the visible point (0 on background).
    overflow: (...) bool, True if `capacity` was too small and some tiles were not drawn.
    """

    tri_id: jax.Array
    bary: jax.Array
    depth: jax.Array
    overflow: jax.Array


class _Setup(NamedTuple):
    """Per-face quantities shared by every pixel of the face; F faces."""

    anchor: jax.Array  # (F, 3, 2) first endpoint (lower vertex index) of the edge opposite vertex k
    delta: jax.Array  # (F, 3, 2) +-(second - first endpoint), signed so the edge function is > 0 inside
    top_left: jax.Array  # (F, 3) bool, the edge owns the pixel centres lying exactly on it
    origin: jax.Array  # (F, 3) (u, v, 1/z) of vertex 0
    inv_z_grad: jax.Array  # (F, 2) screen-space gradient of 1/z over the face's plane
    x0: jax.Array  # (F,) int32 first pixel column of the clipped bounding box
    y0: jax.Array  # (F,) int32 first pixel row
    x1: jax.Array  # (F,) int32 last pixel column (inclusive)
    y1: jax.Array  # (F,) int32 last pixel row (inclusive)
    tiles_x: jax.Array  # (F,) int32 tiles across the box
    count: jax.Array  # (F,) int32 tiles in the box, 0 for skipped faces


def _cross2(a: jax.Array, b: jax.Array) -> jax.Array:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _setup(
    verts: jax.Array, faces: jax.Array, height: int, width: int, tile: int, cull_backfaces: bool, near: float
) -> _Setup:
    tri = verts[faces]  # (F, 3, 3)
    xy, z = tri[..., :2], tri[..., 2]
    area2 = _cross2(xy[:, 1] - xy[:, 0], xy[:, 2] - xy[:, 0])
    ok = jnp.all(jnp.isfinite(tri), axis=(1, 2)) & jnp.all(z > near, axis=1) & (area2 != 0)
    if cull_backfaces:
        ok &= area2 < 0
    orient = jnp.where(area2 > 0, 1.0, -1.0)

    # Edge k joins vertices k+1 and k+2 (it is opposite vertex k); evaluate it from its lower index.
    ia, ib = jnp.roll(faces, -1, axis=1), jnp.roll(faces, -2, axis=1)
    pa, pb = jnp.roll(xy, -1, axis=1), jnp.roll(xy, -2, axis=1)
    swap = ia > ib
    anchor = jnp.where(swap[..., None], pb, pa)
    # Negation is exact in floating point, so the faces on both sides of an edge get opposite values.
    sign = jnp.where(swap, -1.0, 1.0) * orient[:, None]
    delta = sign[..., None] * jnp.where(swap[..., None], pa - pb, pb - pa)
    # delta runs along the edge with the face on its right as seen in the image (y down); the top-left
    # rule of the module docstring then reads:
    top_left = (delta[..., 1] < 0) | ((delta[..., 1] == 0) & (delta[..., 0] > 0))
    # 1/z is affine in screen space; evaluating it from vertex 0 keeps its rounding error to a few ulps.
    inv_z = 1.0 / jnp.where(ok[:, None], z, 1.0)
    edge = pb - pa  # (F, 3, 2) edge k in the face's own order
    safe_area2 = jnp.where(ok, area2, 1.0)[:, None]
    inv_z_grad = jnp.stack(
        [-jnp.sum(inv_z * edge[..., 1], axis=1), jnp.sum(inv_z * edge[..., 0], axis=1)], axis=-1
    ) / safe_area2
    origin = jnp.concatenate([xy[:, 0], inv_z[:, :1]], axis=-1)

    lo, hi = jnp.min(xy, axis=1), jnp.max(xy, axis=1)
    big = float(max(height, width) + 1)  # clip before the int cast; keeps off-screen faces empty
    first = jnp.ceil(jnp.clip(lo - 0.5, -1.0, big)).astype(jnp.int32)
    last = jnp.floor(jnp.clip(hi - 0.5, -1.0, big)).astype(jnp.int32)
    x0, y0 = jnp.maximum(first[:, 0], 0), jnp.maximum(first[:, 1], 0)
    x1, y1 = jnp.minimum(last[:, 0], width - 1), jnp.minimum(last[:, 1], height - 1)
    tiles_x = jnp.maximum(x1 - x0 + tile, 0) // tile
    tiles_y = jnp.maximum(y1 - y0 + tile, 0) // tile
    count = jnp.where(ok, tiles_x * tiles_y, 0)
    return _Setup(anchor, delta, top_left, origin, inv_z_grad, x0, y0, x1, y1, tiles_x, count)


def tile_counts(
    verts_screen: jax.Array,
    faces: jax.Array,
    height: int,
    width: int,
    *,
    tile: int = 4,
    cull_backfaces: bool = False,
    near: float = 1e-3,
) -> jax.Array:
    """Work-list rows each face needs.

    Args:
      verts_screen: (N, 3) screen-space vertices (u, v, z).
      faces: (F, 3) int vertex indices.
      height, width, tile, cull_backfaces, near: as in `rasterize`.

    Returns:
      (F,) int32 number of `tile` x `tile` tiles covering each face's clipped bounding box (0 if skipped).
    """
    return _setup(verts_screen, faces, height, width, tile, cull_backfaces, near).count


def tile_capacity(
    verts_screen: np.ndarray | jax.Array,
    faces: np.ndarray | jax.Array,
    height: int,
    width: int,
    *,
    tile: int = 4,
    cull_backfaces: bool = False,
    near: float = 1e-3,
) -> int:
    """A static `capacity` for `rasterize` that fits the given mesh(es); runs on the host.

    The exact need is rounded up to 4, 5, 6 or 7 times a power of two, so that a jitted caller
    retraces only a few times while the work list wastes at most a quarter of its rows.

    Args:
      verts_screen: (..., N, 3) screen-space vertices; leading axes are a batch (take the largest).
      faces: (F, 3) or (..., F, 3) int vertex indices.
      height, width, tile, cull_backfaces, near: as in `rasterize`.
    """
    if isinstance(verts_screen, jax.core.Tracer) or isinstance(faces, jax.core.Tracer):
        raise ValueError("tile_capacity needs concrete arrays; call it outside jit/vmap")
    verts_screen = np.asarray(verts_screen, np.float32)
    faces = np.asarray(faces, np.int32)
    batch = verts_screen.shape[:-2]
    faces = np.broadcast_to(faces, batch + faces.shape[-2:])
    size = math.prod(batch)
    with jax.ensure_compile_time_eval():  # a host computation even when called while tracing
        count = _batched_tile_counts(
            verts_screen.reshape((size,) + verts_screen.shape[-2:]),
            faces.reshape((size,) + faces.shape[-2:]),
            height,
            width,
            tile,
            cull_backfaces,
            near,
        )
    need = max(int(np.asarray(count, np.int64).sum(axis=-1).max(initial=0)), 1)
    step = 2 ** max(math.ceil(math.log2(need)) - 3, 0)
    return -(-need // step) * step


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5, 6))
def _batched_tile_counts(
    verts: jax.Array, faces: jax.Array, height: int, width: int, tile: int, cull_backfaces: bool, near: float
) -> jax.Array:
    setup = jax.vmap(lambda v, f: _setup(v, f, height, width, tile, cull_backfaces, near).count)
    return setup(verts, faces)


def rasterize(
    verts_screen: jax.Array,
    faces: jax.Array,
    height: int,
    width: int,
    *,
    tile: int = 4,
    capacity: int | None = None,
    cull_backfaces: bool = False,
    near: float = 1e-3,
) -> Fragments:
    """Rasterizes one triangle mesh with a z-buffer.

    jit- and vmap-able with `height`, `width`, `tile`, `capacity`, `cull_backfaces` and `near` static.

    Args:
      verts_screen: (N, 3) float screen-space vertices (u, v, z): pixels with the top-left origin and
        camera depth (see `flame_jax.render.shading.project_to_screen`).
      faces: (F, 3) int vertex indices.
      height, width: image size in pixels.
      tile: side of the square pixel tiles in the work list; the cost per row is tile**2, so it should
        be near the typical face size in pixels (4 was fastest for ~10k faces at 256 px; see
        experiments/benchmarks/render_bench.py).
      capacity: rows of the work list (static). None computes it with `tile_capacity`, which needs
        concrete arrays (not under jit or vmap).
      cull_backfaces: skip faces that run clockwise in the image.
      near: skip faces with a vertex at depth z <= near (camera units).

    Returns:
      Fragments with (H, W) maps.
    """
    if verts_screen.ndim != 2 or verts_screen.shape[-1] != 3:
        raise ValueError(f"rasterize: verts_screen must be (N, 3) (u, v, z), got shape {verts_screen.shape}")
    if faces.ndim != 2 or faces.shape[-1] != 3:
        raise ValueError(f"rasterize: faces must be (F, 3) vertex indices, got shape {faces.shape}")
    if capacity is None:
        if isinstance(verts_screen, jax.core.Tracer) or isinstance(faces, jax.core.Tracer):
            raise ValueError("rasterize: pass a static capacity= under jit/vmap (see tile_capacity)")
        capacity = tile_capacity(
            verts_screen, faces, height, width, tile=tile, cull_backfaces=cull_backfaces, near=near
        )
    return _rasterize(
        jnp.asarray(verts_screen, jnp.float32),
        jnp.asarray(faces, jnp.int32),
        height,
        width,
        tile,
        capacity,
        cull_backfaces,
        near,
    )


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5, 6, 7))
def _rasterize(
    verts: jax.Array,
    faces: jax.Array,
    height: int,
    width: int,
    tile: int,
    capacity: int,
    cull_backfaces: bool,
    near: float,
) -> Fragments:
    if faces.shape[0] == 0:
        return Fragments(
            tri_id=jnp.full((height, width), -1, jnp.int32),
            bary=jnp.zeros((height, width, 3), jnp.float32),
            depth=jnp.zeros((height, width), jnp.float32),
            overflow=jnp.zeros((), bool),
        )
    visible = _visible_faces_fn(height, width, tile, capacity, cull_backfaces, near)
    # Which face is visible is piecewise constant in the vertices; the barycentrics below carry the gradient.
    tri_id, overflow = visible(jax.lax.stop_gradient(verts)[None], faces[None])
    tri_id, overflow = tri_id[0], overflow[0]
    covered = tri_id >= 0
    bary, depth = _perspective_barycentrics(verts, faces, jnp.maximum(tri_id, 0), height, width)
    return Fragments(
        tri_id=tri_id.reshape(height, width),
        bary=jnp.where(covered[:, None], bary, 0.0).reshape(height, width, 3),
        depth=jnp.where(covered, depth, 0.0).reshape(height, width),
        overflow=overflow,
    )


@functools.lru_cache(maxsize=None)
def _visible_faces_fn(
    height: int, width: int, tile: int, capacity: int, cull_backfaces: bool, near: float
) -> Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
    """`_visible_faces` for fixed static settings, with a vmap rule that folds a vmapped axis into its
    batch axis: one flat scatter over the whole batch runs much faster than XLA's batched scatter."""

    @jax.custom_batching.custom_vmap
    def visible(verts: jax.Array, faces: jax.Array) -> tuple[jax.Array, jax.Array]:
        return _visible_faces(verts, faces, height, width, tile, capacity, cull_backfaces, near)

    @visible.def_vmap
    def _fold(
        axis_size: int, in_batched: list[bool], verts: jax.Array, faces: jax.Array
    ) -> tuple[tuple[jax.Array, jax.Array], tuple[bool, bool]]:
        verts, faces = (
            x if batched else jnp.broadcast_to(x, (axis_size,) + x.shape)
            for x, batched in zip((verts, faces), in_batched)
        )
        tri_id, overflow = visible(
            verts.reshape((-1,) + verts.shape[2:]), faces.reshape((-1,) + faces.shape[2:])
        )
        tri_id = tri_id.reshape((axis_size, -1) + tri_id.shape[1:])
        return (tri_id, overflow.reshape(axis_size, -1)), (True, True)

    return visible


def _visible_faces(
    verts: jax.Array,
    faces: jax.Array,
    height: int,
    width: int,
    tile: int,
    capacity: int,
    cull_backfaces: bool,
    near: float,
) -> tuple[jax.Array, jax.Array]:
    """The z-buffer for a batch of B meshes, treated as one mesh drawn into B images.

    Args:
      verts: (B, N, 3) screen-space vertices.
      faces: (B, F, 3) vertex indices, F > 0.

    Returns:
      (B, H * W) int32 visible face per pixel (-1 for background) and (B,) bool overflow flags.
      The B meshes share one work list of B * capacity rows.
    """
    batch, num_faces = faces.shape[:2]
    num_pixels = height * width
    s = jax.vmap(lambda v, f: _setup(v, f, height, width, tile, cull_backfaces, near))(verts, faces)
    s = jax.tree.map(lambda x: x.reshape((batch * num_faces,) + x.shape[2:]), s)

    # Work-list row r -> (face, tile within the face's box); faces are numbered across the batch.
    ends = jnp.cumsum(s.count)
    row = jnp.arange(batch * capacity, dtype=jnp.int32)
    face = jnp.minimum(jnp.searchsorted(ends, row, side="right", method="scan"), batch * num_faces - 1)
    in_list = row < ends[-1]
    local = row - (ends[face] - s.count[face])
    tiles_x = jnp.maximum(s.tiles_x[face], 1)
    tx0 = s.x0[face] + (local % tiles_x) * tile
    ty0 = s.y0[face] + (local // tiles_x) * tile

    x1, y1, anchor, delta, top_left = s.x1[face], s.y1[face], s.anchor[face], s.delta[face], s.top_left[face]
    origin, grad = s.origin[face], s.inv_z_grad[face]
    step = jnp.arange(tile, dtype=jnp.int32)
    shape = (batch * capacity, tile, tile)
    px = jnp.broadcast_to(tx0[:, None, None] + step[None, None, :], shape)  # pixel columns
    py = jnp.broadcast_to(ty0[:, None, None] + step[None, :, None], shape)  # pixel rows
    inside = in_list[:, None, None] & (px <= x1[:, None, None]) & (py <= y1[:, None, None])
    cx = px.astype(jnp.float32) + 0.5
    cy = py.astype(jnp.float32) + 0.5
    for k in range(3):
        a, d = anchor[:, k, :, None, None], delta[:, k, :, None, None]  # (R, 2, 1, 1)
        # The sign of the edge function d x (c - a) comes from comparing its two products, which are
        # exact roundings; their difference could be fused into an inexact multiply-add, and then a
        # pixel centre on a vertex could land in several faces.
        p1, p2 = d[:, 0] * (cy - a[:, 1]), d[:, 1] * (cx - a[:, 0])
        inside &= (p1 > p2) | ((p1 == p2) & top_left[:, k, None, None])
    o, g = origin[:, :, None, None], grad[:, :, None, None]
    du, dv = g[:, 0] * (cx - o[:, 0]), g[:, 1] * (cy - o[:, 1])
    inv_z = o[:, 2] + du + dv
    # XLA may evaluate inv_z separately for the two scatters below, rounding differently (fused
    # multiply-adds); the slack covers that, a few ulps of the terms.
    slack = 16 * float(np.finfo(np.float32).eps) * (o[:, 2] + jnp.abs(du) + jnp.abs(dv))

    image = (face // num_faces)[:, None, None]
    pixel = jnp.where(inside, image * num_pixels + py * width + px, batch * num_pixels).reshape(-1)
    zbuf = jnp.zeros(batch * num_pixels, jnp.float32).at[pixel].max(inv_z.reshape(-1), mode="drop")
    # Among the faces nearest to within the slack, the lowest index wins (deterministic ties).
    nearest = (inv_z + slack).reshape(-1) >= zbuf[jnp.minimum(pixel, batch * num_pixels - 1)]
    face_px = jnp.broadcast_to(face[:, None, None], shape).reshape(-1)
    winner = jnp.full(batch * num_pixels, batch * num_faces, jnp.int32)
    winner = winner.at[jnp.where(nearest, pixel, batch * num_pixels)].min(face_px, mode="drop")

    winner = winner.reshape(batch, num_pixels)
    offset = (jnp.arange(batch, dtype=jnp.int32) * num_faces)[:, None]
    tri_id = jnp.where(winner < batch * num_faces, winner - offset, -1)
    overflow = ends.reshape(batch, num_faces)[:, -1] > batch * capacity
    return tri_id, overflow


def _perspective_barycentrics(
    verts: jax.Array, faces: jax.Array, face: jax.Array, height: int, width: int
) -> tuple[jax.Array, jax.Array]:
    """(H*W, 3) perspective-correct barycentrics and (H*W,) depth of `face` (H*W,) at each pixel centre."""
    tri = verts[faces[face]]  # (P, 3, 3)
    xy, z = tri[..., :2], tri[..., 2]
    yy, xx = jnp.divmod(jnp.arange(height * width, dtype=jnp.int32), width)
    centre = jnp.stack([xx, yy], axis=-1).astype(jnp.float32) + 0.5
    a, b = jnp.roll(xy, -1, axis=1), jnp.roll(xy, -2, axis=1)
    screen = _cross2(b - a, centre[:, None] - a)  # (P, 3) un-normalised screen-space barycentrics
    area2 = jnp.sum(screen, axis=-1, keepdims=True)
    screen = jnp.maximum(screen / jnp.where(area2 == 0, 1.0, area2), 0.0)  # clamp rounding at edges
    weighted = screen / z
    inv_depth = jnp.sum(weighted, axis=-1)
    inv_depth = jnp.where(inv_depth > 0, inv_depth, 1.0)  # background pixels (masked by the caller)
    return weighted / inv_depth[:, None], 1.0 / inv_depth
