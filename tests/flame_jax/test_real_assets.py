"""The real index and embedding files of the official repositories (skipped where ../shared is absent):
they load, and the 68 landmarks on RingNet's FLAME sample mesh are mirror-consistent and anatomical."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import trimesh

from data_pipelines.builders.ibug import ibug_mirror
from flame_jax.io import load_dad3dheads_static, load_embeddings
from flame_jax.landmarks import barycentric_points

@pytest.fixture(scope="module")
def ringnet(shared_dir: Path) -> dict:
    root = shared_dir / "assets" / "ringnet" / "flame_model"
    mesh = trimesh.load(root / "FLAME_sample.ply", process=False)
    emb = load_embeddings(root / "flame_static_embedding.pkl", root / "flame_dynamic_embedding.npy")
    return dict(vertices=np.asarray(mesh.vertices), faces=np.asarray(mesh.faces), **emb)


def _landmarks(r: dict) -> np.ndarray:
    f = jnp.asarray(r["faces"])
    contour = barycentric_points(jnp.asarray(r["vertices"]), f, jnp.asarray(r["dyn_lmk_faces"][0]), jnp.asarray(r["dyn_lmk_bary"][0]))
    static = barycentric_points(jnp.asarray(r["vertices"]), f, jnp.asarray(r["lmk_faces"]), jnp.asarray(r["lmk_bary"]))
    return np.concatenate([np.asarray(contour), np.asarray(static)])


def test_embeddings_and_mesh_load(ringnet: dict) -> None:
    assert ringnet["vertices"].shape == (5023, 3) and ringnet["faces"].shape == (9976, 3)
    assert ringnet["lmk_faces"].shape == (51,) and ringnet["dyn_lmk_faces"].shape == (79, 17)
    np.testing.assert_allclose(ringnet["lmk_bary"].sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(ringnet["dyn_lmk_bary"].sum(-1), 1.0, atol=1e-6)


def test_dad3dheads_static_files(shared_dir: Path, ringnet: dict) -> None:
    static = load_dad3dheads_static(shared_dir / "assets" / "dad3dheads" / "model_training" / "model" / "static")
    sizes = {k: len(v) for k, v in static["subsets"].items()}
    assert sizes == {"face": 2094, "head": 3457, "face_w_ears": 3669, "eyeballs": 1090}
    assert all(v.max() < 5023 for v in static["subsets"].values())
    emb = load_embeddings(static["static_embedding"], static["dynamic_embedding"])
    for k in ("lmk_faces", "lmk_bary", "dyn_lmk_faces", "dyn_lmk_bary"):
        np.testing.assert_array_equal(emb[k], ringnet[k])  # the same files as RingNet's


def test_landmarks_are_mirror_consistent(ringnet: dict) -> None:
    lmk = _landmarks(ringnet)
    mirrored = lmk[ibug_mirror()] * [-1.0, 1.0, 1.0]
    err = np.linalg.norm(lmk - mirrored, axis=1)
    assert err.max() < 0.01, err.max()  # within 1 cm on a random (not exactly symmetric) sample
    assert np.abs(lmk[[8, 27, 28, 29, 30, 33, 51, 57, 62, 66], 0]).max() < 0.005  # midline points


def test_landmarks_sit_where_they_belong(ringnet: dict) -> None:
    lmk, v = _landmarks(ringnet), ringnet["vertices"]
    left_eye, right_eye = v[3931:4477].mean(0), v[4477:5023].mean(0)
    assert left_eye[0] > 0 > right_eye[0]
    # Eye landmarks 36-41 (subject's right) and 42-47 (left) surround their eyeballs.
    assert np.linalg.norm(lmk[36:42].mean(0)[:2] - right_eye[:2]) < 0.012
    assert np.linalg.norm(lmk[42:48].mean(0)[:2] - left_eye[:2]) < 0.012
    assert np.argmax(lmk[:, 2]) == 30  # the nose tip is the frontmost landmark
    assert lmk[8, 1] < lmk[57, 1] < lmk[33, 1] < lmk[27, 1]  # chin, lower lip, nose base, nose bridge
