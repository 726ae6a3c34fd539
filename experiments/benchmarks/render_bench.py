r"""Rasterizer cost on the current backend: ms per 256 x 256 frame, batch 1 and a vmapped batch.

    python experiments/benchmarks/render_bench.py [--size 256] [--batch 8] [--repeats 20] [--write]

The mesh is a closed geodesic sphere of 4842 vertices / 9680 faces (a head-sized workload) whose
silhouette covers about half of the image, turned by a different random rotation for every frame.
Two paths are timed, each jitted with a static work-list capacity and timed after a warm-up call:
`rasterize` alone (screen-space vertices in) and `render_lambert` (projection, rasterization, normals,
interpolation, Lambert shading, compositing). Times are medians over `--repeats` calls; per-frame time
is the call time divided by the batch. Back faces are not culled (the default). `--write` replaces the
"## Rasterizer (render_bench.py)" section of experiments/benchmarks/RESULTS.md with the table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from flame_jax.render import project_to_screen, rasterize, render_lambert, tile_capacity  # noqa: E402

SECTION = "## Rasterizer (render_bench.py)"
RADIUS, DISTANCE = 0.1, 0.5  # metres


def geodesic_sphere(frequency: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere from an icosahedron whose faces are cut into frequency**2 triangles (outward CCW).

    Returns (10 f^2 + 2, 3) vertices and (20 f^2, 3) faces.
    """
    import trimesh

    ico = trimesh.creation.icosahedron()
    verts, faces = [], []
    for a, b, c in ico.vertices[ico.faces]:
        index = {}
        for i in range(frequency + 1):
            for j in range(frequency + 1 - i):
                index[i, j] = len(verts)
                verts.append(a + (b - a) * i / frequency + (c - a) * j / frequency)
        for i in range(frequency):
            for j in range(frequency - i):
                faces.append([index[i, j], index[i + 1, j], index[i, j + 1]])
                if j < frequency - i - 1:
                    faces.append([index[i + 1, j], index[i + 1, j + 1], index[i, j + 1]])
    mesh = trimesh.Trimesh(np.asarray(verts), np.asarray(faces), process=True)  # merges shared vertices
    v = np.asarray(mesh.vertices)
    return v / np.linalg.norm(v, axis=1, keepdims=True), np.asarray(mesh.faces)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    jax.block_until_ready(fn())  # compile + warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def machine() -> str:
    dev = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        lines = cpuinfo.read_text().splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"{dev.platform} ({dev.device_kind}), {os.cpu_count()} CPU cores ({cpu}), jax {jax.__version__}"


def run(size: int, batch: int, repeats: int, tiles: list[int]) -> list[str]:
    unit, faces = geodesic_sphere(22)
    rot = Rotation.random(batch, random_state=0).as_matrix()
    verts_cam = np.einsum("bij,nj->bni", rot, unit * RADIUS) + [0.0, 0.0, DISTANCE]
    # Silhouette radius f R / sqrt(d^2 - R^2) pixels, chosen to cover half of the image.
    focal = size * np.sqrt(0.5 / np.pi) * np.sqrt(DISTANCE**2 - RADIUS**2) / RADIUS
    K = np.array([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]], np.float32)
    verts_cam = jnp.asarray(verts_cam, jnp.float32)
    faces_j = jnp.asarray(faces, jnp.int32)
    K_j = jnp.asarray(K)
    screen = project_to_screen(verts_cam, K_j)
    albedo = jnp.full((len(unit), 3), 0.7)
    light = jnp.array([0.3, -0.5, -1.0])
    background = jnp.full((size, size, 3), 0.2)

    rows = [
        f"`python experiments/benchmarks/render_bench.py --batch {batch} --repeats {repeats}`: a closed"
        f" geodesic sphere of {len(unit)} vertices / {len(faces)} faces covering half of a {size}x{size}"
        " image, a random rotation per frame, no back-face culling; jitted, medians after a warm-up;"
        " batch > 1 is `jax.vmap`. `render_lambert` adds projection, normals, interpolation, shading"
        f" and compositing. Machine: {machine()}.",
        "",
        "| path | tile | capacity | batch | ms / call | ms / frame | covered |",
        "|---|---|---|---|---|---|---|",
    ]
    for tile in tiles:
        cap = tile_capacity(screen, faces, size, size, tile=tile)

        def raster(v: jax.Array) -> object:
            return rasterize(v, faces_j, size, size, tile=tile, capacity=cap)

        def shade(v: jax.Array) -> object:
            return render_lambert(v, faces_j, K_j, albedo, light, 0.3, background, tile=tile, capacity=cap)

        for name, fn, inputs in (("rasterize", raster, screen), ("render_lambert", shade, verts_cam)):
            for n in (1, batch):
                call = jax.jit(fn) if n == 1 else jax.jit(jax.vmap(fn))
                x = inputs[0] if n == 1 else inputs[:n]
                ms = median_ms(lambda: call(x), repeats)
                tri_id = (call(x).tri_id if name == "rasterize" else call(x).fragments.tri_id)
                covered = float(jnp.mean(tri_id >= 0))
                rows.append(f"| {name} | {tile} | {cap} | {n} | {ms:.2f} | {ms / n:.2f} | {covered:.2f} |")
    return rows


def write_section(path: Path, rows: list[str]) -> None:
    """Replaces (or appends) this benchmark's section of RESULTS.md, atomically."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    section = "\n".join([SECTION, "", *rows]) + "\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + ("" if end < 0 else text[end:])
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--tiles", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--write", action="store_true", help="update experiments/benchmarks/RESULTS.md")
    args = parser.parse_args()
    rows = run(args.size, args.batch, args.repeats, args.tiles)
    print("\n".join(rows))
    if args.write:
        write_section(REPO / "experiments" / "benchmarks" / "RESULTS.md", rows)


if __name__ == "__main__":
    main()
