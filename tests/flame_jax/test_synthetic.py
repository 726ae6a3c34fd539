"""The embedded synthetic head model: determinism, validity, sanity under deformation, annotations."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

import jax
import jax.numpy as jnp

from flame_jax import landmarks_68, lbs
from flame_jax.synthetic import (
    NUM_EXPR,
    NUM_SHAPE,
    REGION_NAMES,
    _generate,
    flipped_triangles,
    head_assets,
    head_model,
)
from flame_jax.synthetic.labels import IBUG_FLIP


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory):
    mp = pytest.MonkeyPatch()
    mp.setenv("JAXHEAD_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield head_assets(0)
    mp.undo()


def _pose(jaw: float = 0.0, eye_l: tuple[float, float, float] = (0, 0, 0)) -> np.ndarray:
    p = np.zeros(15, np.float32)
    p[6] = jaw
    p[9:12] = eye_l
    return p


def test_deterministic_and_cached(head, tmp_path, monkeypatch) -> None:
    a, b = _generate(0), _generate(0)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    monkeypatch.setenv("JAXHEAD_CACHE", str(tmp_path))
    fresh = head_model(0)  # writes the cache
    assert len(list(tmp_path.glob("*.npz"))) == 1
    cached = head_model(0)
    for x, y in zip(jax.tree.leaves(fresh), jax.tree.leaves(cached)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    other = _generate(1)
    assert not np.allclose(a["shapedirs"], other["shapedirs"]), "the seed must change the bases"


def test_flame_format(head) -> None:
    m = head.model
    V = m.v_template.shape[0]
    assert 4500 <= V <= 5500
    assert m.shapedirs.shape == (V, 3, NUM_SHAPE + NUM_EXPR) and m.posedirs.shape == (V, 3, 36)
    assert m.J_regressor.shape == (5, V) and m.weights.shape == (V, 5)
    np.testing.assert_allclose(np.asarray(m.J_regressor).sum(1), 1.0, atol=1e-6)
    W = np.asarray(m.weights)
    assert W.min() >= 0.0
    np.testing.assert_allclose(W.sum(1), 1.0, atol=1e-6)
    assert np.asarray(m.parents).tolist() == [-1, 0, 1, 1, 1]
    v, joints = lbs(m, jnp.zeros(NUM_SHAPE + NUM_EXPR), jnp.zeros(15))
    np.testing.assert_allclose(np.asarray(v), np.asarray(m.v_template), atol=1e-6)
    # Variance decays, no component is empty.
    norms = np.linalg.norm(np.asarray(m.shapedirs).reshape(-1, NUM_SHAPE + NUM_EXPR), axis=0)
    assert norms[0] > norms[NUM_SHAPE - 1] > 0 and norms.min() > 0
    # Frame: face toward +z (nose tip frontmost), left eyeball at +x, top above chin.
    t = np.asarray(m.v_template)
    eyes = np.asarray(m.subsets["eyeballs"])
    assert t[:, 2].argmax() not in eyes
    assert t[eyes[: len(eyes) // 2]].mean(0)[0] > 0
    assert -0.12 < t[:, 0].min() and t[:, 0].max() < 0.12 and t[:, 1].min() >= -0.2 and t[:, 1].max() < 0.14


def test_components_are_closed_and_outward(head) -> None:
    t, f = np.asarray(head.model.v_template), np.asarray(head.model.faces)
    mesh = trimesh.Trimesh(t, f, process=False)
    parts = mesh.split(only_watertight=False)
    assert len(parts) == 3  # shell and two eyeballs
    for p in parts:
        assert p.is_watertight and p.is_winding_consistent and p.volume > 0


@pytest.mark.parametrize("block", ["identity", "expression"])
def test_no_flips_at_two_sigma(head, block) -> None:
    m = head.model
    n, offset = (NUM_SHAPE, 0) if block == "identity" else (NUM_EXPR, NUM_SHAPE)
    eye = np.eye(NUM_SHAPE + NUM_EXPR, dtype=np.float32)[offset : offset + n]
    betas = np.concatenate([2.0 * eye, -2.0 * eye])
    count = jax.jit(jax.vmap(lambda b: flipped_triangles(m, b, jnp.zeros(15))))
    assert int(count(jnp.asarray(betas)).max()) == 0
    rng = np.random.default_rng(0)
    draws = np.clip(rng.standard_normal((16, NUM_SHAPE + NUM_EXPR)), -2, 2).astype(np.float32)
    assert int(count(jnp.asarray(draws)).max()) == 0
    extreme = np.zeros((2, NUM_SHAPE + NUM_EXPR), np.float32)
    extreme[0, offset : offset + n], extreme[1, offset : offset + n] = 2.0, -2.0
    assert int(count(jnp.asarray(extreme)).max()) == 0


def test_jaw_opening(head) -> None:
    m = head.model
    zero = jnp.zeros(NUM_SHAPE + NUM_EXPR)
    assert int(flipped_triangles(m, zero, jnp.asarray(_pose(jaw=0.35)))) == 0
    rest, _ = lbs(m, zero, jnp.zeros(15))
    opened, _ = lbs(m, zero, jnp.asarray(_pose(jaw=0.3)))
    rest, opened = np.asarray(rest), np.asarray(opened)
    t = np.asarray(m.v_template)
    chin = np.where((np.abs(t[:, 0]) < 0.01) & (t[:, 1] < -0.08) & (t[:, 1] > -0.1) & (t[:, 2] > 0.02))[0]
    assert len(chin) > 0
    d = opened[chin] - rest[chin]
    assert np.all(d[:, 1] < -0.005) and np.all(d[:, 2] < -0.005)  # down and back
    cranium = np.where(t[:, 1] > 0.06)[0]
    np.testing.assert_allclose(opened[cranium], rest[cranium], atol=1e-7)


def test_eyeballs_rotate_rigidly(head) -> None:
    m = head.model
    left = np.asarray(m.subsets["eyeballs"])[: len(m.subsets["eyeballs"]) // 2]
    v, joints = lbs(m, jnp.zeros(NUM_SHAPE + NUM_EXPR), jnp.asarray(_pose(eye_l=(0.0, 0.4, 0.0))))
    v, j = np.asarray(v)[left], np.asarray(joints)[3]
    t = np.asarray(m.v_template)[left]
    # Distances between eyeball vertices and to the eye joint are preserved.
    np.testing.assert_allclose(np.linalg.norm(v - j, axis=1), np.linalg.norm(t - j, axis=1), atol=1e-6)
    assert np.abs(v - t).max() > 1e-3


def test_face_region(head) -> None:
    V = head.model.v_template.shape[0]
    r = head.face_region
    assert r.shape == (1220,) and len(np.unique(r)) == 1220 and r.max() < V
    assert not np.isin(r, np.asarray(head.model.subsets["eyeballs"])).any()
    assert head.subsample.shape == (305,) and np.all(np.diff(head.subsample) > 0) and head.subsample.max() < 1220
    assert head.kpt_ind.shape == (68,) and head.kpt_ind.min() >= 0 and head.kpt_ind.max() < 1220
    assert head.face_triangles.max() < 1220 and 2000 < len(head.face_triangles) < 2600
    fi = head.flip_index
    np.testing.assert_array_equal(fi[fi], np.arange(1220))  # an involution
    t = np.asarray(head.model.v_template)[r]
    np.testing.assert_allclose(t[fi], t * [-1, 1, 1], atol=1e-9)
    np.testing.assert_allclose(head.mean_face_head, t * [1, -1, -1], atol=1e-6)
    # Region triangles face the camera in the head frame (-z), like TRG's.
    f = head.mean_face_head[head.face_triangles]
    n = np.cross(f[:, 1] - f[:, 0], f[:, 2] - f[:, 0])
    assert np.mean(n[:, 2] < 0) > 0.9


def test_landmarks_mirror_consistent_and_placed(head) -> None:
    m = head.model
    t = jnp.asarray(m.v_template)
    lmk = np.asarray(landmarks_68(m, t, contour="frontal"))
    np.testing.assert_allclose(lmk[IBUG_FLIP], lmk * [-1, 1, 1], atol=1e-6)
    assert lmk[:, 2].argmax() == 30  # nose tip frontmost
    eye_l = np.asarray(m.v_template)[np.asarray(m.subsets["eyeballs"])].reshape(2, -1, 3).mean(1)[0]
    assert np.linalg.norm(lmk[42:48].mean(0)[:2] - eye_l[:2]) < 0.006  # left eye contour around the eyeball
    assert lmk[8, 1] < lmk[57, 1] < lmk[33, 1] < lmk[27, 1] < lmk[19, 1]  # chin < lip < nose < bridge < brow
    # The dynamic contour changes with yaw.
    yawed = np.zeros(15, np.float32)
    yawed[1] = 0.5
    assert not np.allclose(np.asarray(landmarks_68(m, t, jnp.asarray(yawed)))[:17], lmk[:17])


def test_subsets_and_appearance(head) -> None:
    s = {k: np.asarray(v) for k, v in head.model.subsets.items()}
    assert set(s) >= {"face", "head", "face_w_ears", "eyeballs", "face_region"}
    assert np.isin(s["head"], s["face_w_ears"]).all() and len(s["head"]) < len(s["face_w_ears"])
    assert np.isin(s["face"], s["head"]).all()
    assert head.albedo.shape == (head.model.v_template.shape[0], 3) and head.albedo.dtype == np.float32
    present = {REGION_NAMES[i] for i in np.unique(head.region)}
    assert present == set(REGION_NAMES)
    np.testing.assert_array_equal(head.vertex_flip[head.vertex_flip], np.arange(len(head.vertex_flip)))


def test_demo_writes_pictures(head, tmp_path) -> None:
    from flame_jax.demo import render

    paths = render(head, tmp_path)
    assert len(paths) >= 10 and paths[-1].name == "sheet.png"
    for p in paths:
        assert p.stat().st_size > 5000
