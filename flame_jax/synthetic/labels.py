"""Annotations of the synthetic head: the 68 iBUG landmarks, vertex subsets and the
TRG-shaped face region (1220 vertices, 68 landmark ids, 305 sampled ids, flip index)."""

from __future__ import annotations

import numpy as np

from flame_jax.synthetic.geometry import Mesh

# iBUG-68 points 18..68 (1-based) as frontal (x, y) targets in the model frame; subject's
# right is -x (the image left of a frontal face). The shell point in front of each is used.
_EYE_L, _EYE_R = 0.032, -0.032
STATIC_TARGETS = np.array(
    [
        # 18-22 right brow (outer -> inner), 23-27 left brow (inner -> outer)
        *[(x, 0.043 - 8.0 * (abs(x) - 0.03) ** 2 + 0.002) for x in (-0.052, -0.043, -0.033, -0.023, -0.013)],
        *[(x, 0.043 - 8.0 * (abs(x) - 0.03) ** 2 + 0.002) for x in (0.013, 0.023, 0.033, 0.043, 0.052)],
        # 28-31 nose bridge to tip, 32-36 nose base (right -> left)
        (0.0, 0.024), (0.0, 0.008), (0.0, -0.008), (0.0, -0.026),
        (-0.012, -0.035), (-0.006, -0.037), (0.0, -0.038), (0.006, -0.037), (0.012, -0.035),
        # 37-42 right eye (outer corner, upper lid x2, inner corner, lower lid x2)
        (_EYE_R - 0.013, 0.021), (_EYE_R - 0.004, 0.0265), (_EYE_R + 0.005, 0.0265),
        (_EYE_R + 0.013, 0.021), (_EYE_R + 0.005, 0.0165), (_EYE_R - 0.004, 0.0165),
        # 43-48 left eye (inner corner, upper lid x2, outer corner, lower lid x2)
        (_EYE_L - 0.013, 0.021), (_EYE_L - 0.005, 0.0265), (_EYE_L + 0.004, 0.0265),
        (_EYE_L + 0.013, 0.021), (_EYE_L + 0.004, 0.0165), (_EYE_L - 0.005, 0.0165),
        # 49-60 outer lips from the right corner over the upper lip, back along the lower lip
        (-0.024, -0.052), (-0.016, -0.0455), (-0.006, -0.0425), (0.0, -0.043), (0.006, -0.0425),
        (0.016, -0.0455), (0.024, -0.052), (0.016, -0.0585), (0.006, -0.061), (0.0, -0.0615),
        (-0.006, -0.061), (-0.016, -0.0585),
        # 61-68 inner lips
        (-0.019, -0.052), (-0.007, -0.0505), (0.0, -0.0505), (0.007, -0.0505), (0.019, -0.052),
        (0.007, -0.054), (0.0, -0.054), (-0.007, -0.054),
    ]
)
# iBUG-68 left/right pairs (0-based), for mirror checks and flipping landmarks.
IBUG_FLIP = np.array(
    [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 27, 28, 29,
     30, 35, 34, 33, 32, 31, 45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40, 54, 53, 52, 51, 50, 49, 48, 59, 58,
     57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)
NUM_FACE_REGION = 1220
NUM_SUBSAMPLE = 305
# Centre of the lower face in the frontal view, from which the jaw contour is traced.
_CONTOUR_CENTRE = np.array([0.0, -0.028])


def ray_hits(origins: np.ndarray, direction: np.ndarray, vertices: np.ndarray, faces: np.ndarray):
    """First hit of parallel rays on a mesh (Moller-Trumbore), vectorised over rays x faces.

    Returns (face index (R,), barycentric weights (R, 3)); raises if a ray misses.
    """
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    e1, e2 = b - a, c - a
    p = np.cross(direction, e2)
    det = np.einsum("fk,fk->f", e1, p)
    inv = 1.0 / np.where(np.abs(det) < 1e-18, np.inf, det)
    s = origins[:, None, :] - a[None]
    u = np.einsum("rfk,fk->rf", s, p) * inv
    q = np.cross(s, e1[None])
    v = np.einsum("k,rfk->rf", direction, q) * inv
    t = np.einsum("rfk,fk->rf", q, e2) * inv
    ok = (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    t = np.where(ok, t, np.inf)
    face = np.argmin(t, axis=1)
    if not np.all(np.isfinite(t[np.arange(len(t)), face])):
        raise RuntimeError("synthetic head: a landmark ray missed the mesh")
    uu, vv = u[np.arange(len(t)), face], v[np.arange(len(t)), face]
    return face, np.stack([1.0 - uu - vv, uu, vv], axis=1)


def static_embedding(mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """The 51 static landmarks: (51,) triangle ids and (51, 3) barycentric weights on the shell."""
    shell_faces = np.where(np.all(mesh.part[mesh.faces] == 0, axis=1))[0]
    origins = np.concatenate([STATIC_TARGETS, np.full((len(STATIC_TARGETS), 1), 0.5)], axis=1)
    hit, bary = ray_hits(origins, np.array([0.0, 0.0, -1.0]), mesh.vertices, mesh.faces[shell_faces])
    return shell_faces[hit].astype(np.int32), bary


def yaw_of_row(row: int) -> float:
    """Yaw (degrees, about the model y axis) that the dynamic contour row stands for."""
    return -float(row) if row <= 39 else float(row - 39)


def _jaw_candidates(mesh: Mesh) -> np.ndarray:
    v = mesh.vertices
    return np.where(
        (mesh.part == 0) & (v[:, 2] > -0.035) & (v[:, 1] > -0.1) & (v[:, 1] < 0.02) & (np.abs(v[:, 0]) < 0.075)
    )[0]


def dynamic_embedding(mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """The 17 jaw-contour landmarks per yaw bin: (79, 17) triangle ids, (79, 17, 3) weights.

    For the yaw of each row, the head is turned about its y axis and seen from +z; contour
    point i is the outermost jaw-region vertex along direction theta_i = -90 + 11.25 i
    degrees around the lower-face centre (i = 0 on the subject's right, 8 the chin).
    Points are vertices, embedded with one-hot weights on a triangle that has them.
    """
    cand = _jaw_candidates(mesh)
    pts = mesh.vertices[cand]
    owner = np.full(len(mesh.vertices), -1)
    owner[mesh.faces[::-1].ravel()] = np.repeat(np.arange(len(mesh.faces))[::-1], 3)
    theta = np.radians(-90.0 + 11.25 * np.arange(17))
    dirs = np.stack([np.sin(theta), -np.cos(theta)], axis=1)
    faces = np.zeros((79, 17), np.int32)
    bary = np.zeros((79, 17, 3))
    for row in range(79):
        a = np.radians(yaw_of_row(row))
        Ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        xy = (pts @ Ry.T)[:, :2] - _CONTOUR_CENTRE
        ang = np.arctan2(xy[:, 0], -xy[:, 1])
        for i in range(17):
            diff = np.abs((ang - theta[i] + np.pi) % (2 * np.pi) - np.pi)
            band = diff < np.radians(4.0)
            score = np.where(band, xy @ dirs[i], -np.inf)
            vid = cand[int(np.argmax(score))]
            f = owner[vid]
            faces[row, i] = f
            bary[row, i, list(mesh.faces[f]).index(vid)] = 1.0
    return faces, bary


def subsets(mesh: Mesh) -> dict[str, np.ndarray]:
    """DAD-3DHeads-style vertex subsets: face, head (no ears), face_w_ears, eyeballs, ears."""
    v = mesh.vertices
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    shell = mesh.part == 0
    ears = shell & (np.abs(x) > 0.066) & (np.abs(y) < 0.04) & (z > -0.08) & (z < -0.02)
    face_w_ears = shell & (y > -0.12)
    face = shell & (z > -0.015) & ((x / 0.068) ** 2 + ((y + 0.02) / 0.09) ** 2 < 1.0)
    ids = lambda m: np.where(m)[0].astype(np.int32)  # noqa: E731
    return dict(
        face=ids(face), head=ids(face_w_ears & ~ears), face_w_ears=ids(face_w_ears), eyeballs=ids(mesh.part > 0),
        ears=ids(ears),
    )


def face_region(mesh: Mesh, flip: np.ndarray) -> np.ndarray:
    """The 1220 front-face shell vertices (forehead to chin, cheek to cheek), mirror-closed."""
    v = mesh.vertices
    score = (v[:, 0] / 0.07) ** 2 + ((v[:, 1] + 0.012) / 0.088) ** 2
    score = np.where((mesh.part == 0) & (v[:, 2] > -0.03), score, np.inf)
    chosen: list[int] = []
    taken = np.zeros(len(v), bool)
    for i in np.argsort(score, kind="stable"):
        if taken[i]:
            continue
        group = [i] if flip[i] == i else [i, flip[i]]
        if len(chosen) + len(group) > NUM_FACE_REGION:
            continue
        chosen += group
        taken[group] = True
        if len(chosen) == NUM_FACE_REGION:
            break
    if len(chosen) != NUM_FACE_REGION:
        raise RuntimeError("synthetic head: could not select a symmetric 1220-vertex face region")
    return np.sort(np.asarray(chosen, np.int64)).astype(np.int32)


def farthest_point_sampling(points: np.ndarray, n: int, start: int) -> np.ndarray:
    """n indices into points (P, 3), greedily farthest from those chosen, from `start`."""
    chosen = [start]
    dist = np.linalg.norm(points - points[start], axis=1)
    for _ in range(n - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(points - points[nxt], axis=1))
    return np.asarray(chosen)
