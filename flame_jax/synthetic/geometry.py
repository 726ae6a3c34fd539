"""Procedural geometry of the synthetic head: a star-shaped shell plus two eyeballs.

The shell is r(d) along unit directions d from a centre inside the head, so it is
embedded (no self-intersection) by construction. r is a smooth union of convex
bodies (cranium, lower face, neck) plus facial features as smooth radial bumps and
dents. The triangulation is a cube-sphere, warped to be denser on the face and made
exactly mirror-symmetric about x = 0. Frame: FLAME's (metres, y up, face toward +z,
+x = subject's left).
"""

from __future__ import annotations

import dataclasses

import numpy as np

CENTRE = np.array([0.0, 0.0, -0.04])
# Eyeball centres (left, right) and radius; the shell has sockets in front of them.
EYE_CENTRES = np.array([[0.032, 0.021, 0.031], [-0.032, 0.021, 0.031]])
EYE_RADIUS = 0.0125


@dataclasses.dataclass(frozen=True)
class Mesh:
    """vertices (V, 3), faces (F, 3) counter-clockwise seen from outside, and
    `part` (V,) 0 = shell, 1 = left eyeball, 2 = right eyeball."""

    vertices: np.ndarray
    faces: np.ndarray
    part: np.ndarray


def _cube_sphere(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-cube surface grid with n cells per edge: points (P, 3) on the cube, quads (Q, 4)."""
    lin = np.linspace(-1.0, 1.0, n + 1)
    index: dict[tuple[float, ...], int] = {}
    points: list[np.ndarray] = []

    def vid(p: np.ndarray) -> int:
        key = tuple(np.round(p, 9))
        if key not in index:
            index[key] = len(points)
            points.append(p)
        return index[key]

    quads = []
    for axis in range(3):
        u, v = [k for k in range(3) if k != axis]
        for sign in (-1.0, 1.0):
            for i in range(n):
                for j in range(n):
                    corners = []
                    for a, b in ((i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)):
                        p = np.zeros(3)
                        p[axis], p[u], p[v] = sign, lin[a], lin[b]
                        corners.append(vid(p))
                    quads.append(corners)
    return np.asarray(points), np.asarray(quads)


def _orient_outward(points: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Flips triangles of a star-shaped surface (around the origin) to face outward."""
    a, b, c = points[tris[:, 0]], points[tris[:, 1]], points[tris[:, 2]]
    inward = np.einsum("ij,ij->i", np.cross(b - a, c - a), a + b + c) < 0
    return np.where(inward[:, None], tris[:, ::-1], tris)


def mirror_permutation(points: np.ndarray) -> np.ndarray:
    """(P, 3) points of an x-symmetric set -> (P,) index of each point's mirror x -> -x."""
    keys = {tuple(np.round(p, 9)): i for i, p in enumerate(points)}
    mirrored = points * np.array([-1.0, 1.0, 1.0])
    try:
        return np.array([keys[tuple(np.round(p, 9) + 0.0)] for p in mirrored])
    except KeyError as e:
        raise ValueError("point set is not mirror-symmetric about x = 0") from e


def symmetric_sphere(n: int, face_warp: float) -> tuple[np.ndarray, np.ndarray]:
    """A mirror-symmetric triangulated unit sphere, denser toward +z.

    Returns directions (P, 3) and outward triangles (T, 3). n must be even so that
    the x = 0 plane runs along grid lines and no quad straddles it.
    """
    if n % 2:
        raise ValueError("the cube-sphere resolution must be even")
    cube, quads = _cube_sphere(n)
    d = cube / np.linalg.norm(cube, axis=1, keepdims=True)
    # Pull directions toward the +z pole (the face): theta' = pi (theta / pi)^warp.
    theta = np.arccos(np.clip(d[:, 2], -1.0, 1.0))
    axis = d[:, :2] / np.maximum(np.linalg.norm(d[:, :2], axis=1, keepdims=True), 1e-12)
    theta_w = np.pi * (theta / np.pi) ** face_warp
    d = np.concatenate([axis * np.sin(theta_w)[:, None], np.cos(theta_w)[:, None]], axis=1)
    d[:, 0] = np.where(np.abs(cube[:, 0]) < 1e-12, 0.0, d[:, 0])  # keep the midline exactly on x = 0
    tris = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    tris = _orient_outward(d, tris)
    # Keep the x > 0 half and mirror it: the triangulation is then exactly symmetric.
    perm = mirror_permutation(np.round(cube, 12))
    right = tris[d[tris].mean(axis=1)[:, 0] > 0]
    tris = np.concatenate([right, perm[right][:, ::-1]])
    return d, tris


def _ellipsoid_exit(d: np.ndarray, centre: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Distance along unit rays d from CENTRE to the surface of an ellipsoid containing CENTRE."""
    o = (CENTRE - centre) / axes
    k = d / axes
    a = np.sum(k * k, axis=1)
    b = 2.0 * (k @ o)
    c = o @ o - 1.0
    return (-b + np.sqrt(b * b - 4.0 * a * c)) / (2.0 * a)


def _smax(a: np.ndarray, b: np.ndarray, width: float) -> np.ndarray:
    return np.logaddexp(a / width, b / width) * width


def _smin(a: np.ndarray, b: np.ndarray, width: float) -> np.ndarray:
    return -_smax(-a, -b, width)


def _neck_exit(d: np.ndarray) -> np.ndarray:
    """Ray exit from a vertical neck cylinder (radius 0.052 around x = 0, z = -0.035, bottom y = -0.19)."""
    zc, rho, bottom = -0.045, 0.052, -0.19
    ox, oz = CENTRE[0], CENTRE[2] - zc
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = 2.0 * (ox * d[:, 0] + oz * d[:, 2])
    c = ox**2 + oz**2 - rho**2
    side = (-b + np.sqrt(b * b - 4.0 * a * c)) / (2.0 * np.maximum(a, 1e-12))
    side = np.where(a < 1e-9, np.inf, side)
    down = np.where(d[:, 1] < -1e-9, (bottom - CENTRE[1]) / np.minimum(d[:, 1], -1e-9), np.inf)
    r = _smin(np.minimum(side, 10.0), np.minimum(down, 10.0), 0.004)
    # The neck only extends downward; above the jaw it hides inside the head.
    return np.where(d[:, 1] < 0.0, r, 0.0)


def _gauss(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def feature_offsets(p: np.ndarray) -> np.ndarray:
    """Radial offsets (P,) in metres of the facial features at base-surface points p (P, 3)."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    ax = np.abs(x)
    front = _sigmoid((z - 0.0) / 0.008)
    off = np.zeros(len(p))
    # Nose: a ridge from the bridge (y = 0.03) widening and rising to the tip (y = -0.03).
    s = np.clip((0.032 - y) / 0.062, 0.0, 1.0)
    sigma_x = 0.0055 + 0.0075 * s
    height = (0.004 + 0.024 * s**1.6) * _sigmoid((y + 0.034) / 0.0025) * _sigmoid((0.04 - y) / 0.004)
    off += front * height * np.exp(-0.5 * (x / sigma_x) ** 2)
    off += front * 0.007 * _gauss(ax, 0.015, 0.005) * _gauss(y, -0.027, 0.006)  # alae
    # Eye sockets, brow ridge, cheekbones.
    off -= front * 0.013 * _gauss(ax, 0.032, 0.013) * _gauss(y, 0.019, 0.009)
    off += front * 0.006 * _gauss(y, 0.041, 0.0065) * _sigmoid((0.055 - ax) / 0.006)
    off += front * 0.006 * _gauss(ax, 0.046, 0.015) * _gauss(y, -0.006, 0.012)
    # Lips with a mouth line between them, and the chin.
    mouth_x = _sigmoid((0.025 - ax) / 0.003)
    off += front * 0.007 * mouth_x * _gauss(y, -0.052, 0.0085)
    off -= front * 0.004 * mouth_x * _gauss(y, -0.0525, 0.0016)
    off -= front * 0.003 * _gauss(ax, 0.0, 0.014) * _gauss(y, -0.071, 0.004)
    off += front * 0.006 * _gauss(ax, 0.0, 0.016) * _gauss(y, -0.086, 0.012)
    # Ears: flattened bumps on both sides, behind the cheek.
    side = _sigmoid((ax - 0.06) / 0.006)
    off += side * 0.017 * _gauss(y, 0.0, 0.02) * _gauss(z, -0.05, 0.011)
    off -= side * 0.005 * _gauss(y, 0.002, 0.008) * _gauss(z, -0.045, 0.004)  # concha
    return off


def shell_radius(d: np.ndarray) -> np.ndarray:
    """Radial distance (P,) of the shell along unit directions d (P, 3)."""
    cranium = _ellipsoid_exit(d, np.array([0.0, 0.028, -0.047]), np.array([0.079, 0.104, 0.102]))
    face = _ellipsoid_exit(d, np.array([0.0, -0.045, -0.016]), np.array([0.062, 0.062, 0.069]))
    r = _smax(_smax(cranium, face, 0.006), _neck_exit(d), 0.006)
    return r + feature_offsets(CENTRE + r[:, None] * d)


def eyeball(centre: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A cube-sphere eyeball: vertices (P, 3), outward faces (T, 3)."""
    d, tris = symmetric_sphere(n, face_warp=1.0)
    return centre + EYE_RADIUS * d, tris


def build_mesh(shell_resolution: int = 26, eye_resolution: int = 8, face_warp: float = 1.25) -> Mesh:
    d, shell_faces = symmetric_sphere(shell_resolution, face_warp)
    shell = CENTRE + shell_radius(d)[:, None] * d
    parts = [(shell, shell_faces)]
    for centre in EYE_CENTRES:
        parts.append(eyeball(centre, eye_resolution))
    vertices, faces, part, offset = [], [], [], 0
    for k, (v, f) in enumerate(parts):
        vertices.append(v)
        faces.append(f + offset)
        part.append(np.full(len(v), k))
        offset += len(v)
    return Mesh(np.concatenate(vertices), np.concatenate(faces).astype(np.int32), np.concatenate(part))
