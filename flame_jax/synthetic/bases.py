"""Blendshape bases of the synthetic head: identity (global, smooth) and expression (local).

Coefficients are in units of one standard deviation: a coefficient of 1 on component
k displaces the shell by sigma_k (RMS over vertices for identity, peak for expression).
Eyeballs move rigidly: they take the displacement of the shell field at their centre.
"""

from __future__ import annotations

import numpy as np

from flame_jax.synthetic.geometry import EYE_CENTRES, Mesh

_MIRROR = np.array([-1.0, 1.0, 1.0])
# Normalisation of positions for the smooth identity fields.
_ORIGIN, _SCALE = np.array([0.0, -0.03, -0.04]), 0.12


def _fourier_field(p: np.ndarray, omegas: np.ndarray, phases: np.ndarray, amps: np.ndarray) -> np.ndarray:
    """sum_m amps[m] cos(omega_m . q + phase_m): (P, 3) points -> (P, 3) field."""
    q = (p - _ORIGIN) / _SCALE
    return np.cos(q @ omegas.T + phases) @ amps


def identity_basis(mesh: Mesh, n: int, rng: np.random.Generator) -> np.ndarray:
    """(V, 3, n) mirror-symmetric smooth deformations with decaying variance.

    Components are orthogonal over the shell vertices; sigma_k = 6 mm (k + 1)^-0.9 RMS.
    """
    shell = mesh.part == 0
    pts = np.concatenate([mesh.vertices[shell], EYE_CENTRES])
    raw = np.zeros((len(pts), 3, n))
    for k in range(n):
        freq = 0.5 + 2.5 * (k / n) ** 0.5  # low frequencies first
        omegas = rng.normal(0.0, freq * 2.0 * np.pi / 4.0, (4, 3))
        phases = rng.uniform(0, 2 * np.pi, 4)
        amps = rng.normal(0.0, 1.0, (4, 3))
        field = _fourier_field(pts, omegas, phases, amps)
        mirrored = _fourier_field(pts * _MIRROR, omegas, phases, amps) * _MIRROR
        raw[:, :, k] = 0.5 * (field + mirrored)
    n_shell = int(shell.sum())
    flat = raw[:n_shell].reshape(-1, n)
    # Orthonormalise on the shell; eyeball centres follow through the same linear map.
    _, r = np.linalg.qr(flat)
    r_inv = np.linalg.inv(r)
    ortho = raw.reshape(-1, n) @ r_inv
    ortho = ortho.reshape(len(pts), 3, n)
    rms = np.sqrt(np.mean(np.sum(ortho[:n_shell] ** 2, axis=1), axis=0))
    sigma = 0.006 * (np.arange(n) + 1.0) ** -0.9
    ortho *= (sigma / rms)[None, None, :]
    basis = np.zeros((len(mesh.vertices), 3, n))
    basis[shell] = ortho[:n_shell]
    basis[mesh.part == 1] = ortho[n_shell]
    basis[mesh.part == 2] = ortho[n_shell + 1]
    return basis


# Expression anchors on the face (x, y) and the directions their deformations favour.
_ANCHORS = (
    ("mouth_corner", (0.024, -0.052), (1.0, 1.0, 0.6)),
    ("upper_lip", (0.0, -0.046), (0.3, 1.0, 1.0)),
    ("lower_lip", (0.0, -0.059), (0.3, 1.0, 1.0)),
    ("chin", (0.0, -0.083), (0.4, 1.0, 0.8)),
    ("brow_inner", (0.016, 0.042), (0.6, 1.0, 0.5)),
    ("brow_outer", (0.044, 0.039), (0.5, 1.0, 0.5)),
    ("upper_lid", (0.032, 0.031), (0.2, 1.0, 0.4)),
    ("lower_lid", (0.032, 0.008), (0.2, 1.0, 0.4)),
    ("cheek", (0.046, -0.022), (0.7, 0.7, 1.0)),
    ("nose_wrinkle", (0.008, 0.002), (0.4, 0.8, 0.6)),
)


def _front_point(mesh: Mesh, xy: tuple[float, float]) -> np.ndarray:
    shell = mesh.vertices[mesh.part == 0]
    front = shell[shell[:, 2] > 0]
    return front[np.argmin(np.sum((front[:, :2] - np.asarray(xy)) ** 2, axis=1))]


def expression_basis(mesh: Mesh, n: int, rng: np.random.Generator) -> np.ndarray:
    """(V, 3, n) localised deformations around the mouth, brows, eyelids, cheeks and nose.

    Component k is a Gaussian bump (radius 12-22 mm) around one anchor, on one side or
    mirrored on both, moving along a random direction with a small linear twist;
    peak displacement sigma_k = 3 mm (1 + k / 25)^-0.7. Zero on the eyeballs.
    """
    v = mesh.vertices
    shell = (mesh.part == 0).astype(float)
    basis = np.zeros((len(v), 3, n))
    for k in range(n):
        name, xy, bias = _ANCHORS[k % len(_ANCHORS)]
        centre = _front_point(mesh, xy)
        radius = rng.uniform(0.012, 0.022)
        direction = rng.normal(0.0, 1.0, 3) * np.asarray(bias)
        direction /= np.linalg.norm(direction)
        twist = rng.normal(0.0, 0.3, (3, 3))
        both_sides = xy[0] == 0.0 or rng.uniform() < 0.5
        field = np.zeros_like(v)
        centres = [centre, centre * _MIRROR] if xy[0] != 0.0 else [centre]
        if xy[0] != 0.0 and not both_sides:
            centres = [centres[rng.integers(2)]]
        for c in centres:
            sign = _MIRROR if c[0] < 0 else np.ones(3)
            rel = (v - c) / radius
            g = np.exp(-0.5 * np.sum(rel**2, axis=1))
            field += g[:, None] * (direction * sign + (rel * sign) @ twist.T * sign)
        sigma = 0.003 * (1.0 + k / 25.0) ** -0.7
        peak = np.max(np.linalg.norm(field * shell[:, None], axis=1))
        basis[:, :, k] = field * shell[:, None] * (sigma / peak)
    return basis
