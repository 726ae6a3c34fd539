"""The synthetic head's skeleton: joint regressor, LBS weights and pose correctives.

Joints follow FLAME: 0 root (base of the neck), 1 neck (head centre), 2 jaw (hinge,
below and in front of the ears), 3 left eye, 4 right eye (eyeball centres). Each
J_regressor row averages a vertex set whose centroid is the joint, so the joints
follow identity changes and the rows sum to 1.
"""

from __future__ import annotations

import numpy as np

from flame_jax.synthetic.geometry import Mesh


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _box(p: np.ndarray, lo: tuple[float, float, float], hi: tuple[float, float, float]) -> np.ndarray:
    return np.all((p >= np.asarray(lo)) & (p <= np.asarray(hi)), axis=1)


def joint_regressor(mesh: Mesh) -> np.ndarray:
    """(5, V) rows of uniform weights over each joint's vertex set."""
    v, shell = mesh.vertices, mesh.part == 0
    ax = np.abs(v[:, 0])
    sets = [
        shell & (np.abs(v[:, 1] + 0.17) < 0.006),  # root: a ring around the lower neck
        shell & (np.abs(v[:, 1] + 0.01) < 0.005),  # neck: a ring around the head at nose level
        shell & (ax > 0.05) & (ax < 0.075) & _box(v, (-1, -0.035, -0.045), (1, -0.01, -0.02)),  # jaw hinges
        mesh.part == 1,
        mesh.part == 2,
    ]
    J = np.zeros((5, len(v)))
    for j, s in enumerate(sets):
        if not s.any():
            raise RuntimeError(f"synthetic head: joint {j} has an empty vertex set")
        J[j, s] = 1.0 / s.sum()
    return J


def jaw_weight(p: np.ndarray) -> np.ndarray:
    """(P,) how much each shell point follows the jaw: the lower lip, chin and lower cheeks,
    fading toward the upper lip, the ears and the throat."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    below_mouth = _sigmoid((-0.0505 - y) / 0.0022)
    forward = _sigmoid((z + 0.012) / 0.009)
    above_throat = _sigmoid((y + 0.118) / 0.008)
    # Away from the lips the boundary rises to the jaw angle below the ears.
    cheek = _sigmoid((np.abs(x) - 0.03) / 0.008) * _sigmoid((-0.03 - y) / 0.006)
    return np.maximum(below_mouth, cheek) * forward * above_throat


def lbs_weights(mesh: Mesh) -> np.ndarray:
    """(V, 5) skinning weights, rows summing to 1."""
    v = mesh.vertices
    W = np.zeros((len(v), 5))
    shell = mesh.part == 0
    p = v[shell]
    root = _sigmoid((-0.125 - p[:, 1]) / 0.012)
    jaw = (1.0 - root) * jaw_weight(p)
    W[shell, 0] = root
    W[shell, 2] = jaw
    W[shell, 1] = 1.0 - root - jaw
    W[mesh.part == 1, 3] = 1.0
    W[mesh.part == 2, 4] = 1.0
    return W


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    n = np.zeros_like(vertices)
    fn = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def pose_correctives(mesh: Mesh) -> np.ndarray:
    """(V, 3, 36) small correctives linear in the pose feature (R_j - I, j = neck, jaw, eyes).

    Opening the jaw (its (R - I)[2, 1] entry, sin of the angle) puffs the lower cheeks
    out along the normal; turning the neck (its (R - I)[0, 2] entry) shifts the throat
    sideways. The eyes have none: eyeballs are rigid.
    """
    v, normals = mesh.vertices, vertex_normals(mesh.vertices, mesh.faces)
    P = np.zeros((len(v), 3, 36))
    shell = (mesh.part == 0).astype(float)
    cheeks = np.exp(-0.5 * ((np.abs(v[:, 0]) - 0.048) ** 2 + (v[:, 1] + 0.05) ** 2 + (v[:, 2] + 0.005) ** 2) / 0.015**2)
    P[:, :, 9 + 7] = 0.008 * (shell * cheeks)[:, None] * normals
    throat = np.exp(-0.5 * ((v[:, 1] + 0.11) ** 2 / 0.02**2 + (v[:, 2] - 0.0) ** 2 / 0.02**2))
    P[:, 0, 0 + 2] = -0.006 * shell * throat
    return P
