"""The synthetic_heads builder: stored geometry agrees with itself through independent numpy
projections, the build is deterministic, atomic and idempotent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines.build import ensure_built, make_builder
from data_pipelines.builders import synthetic_heads
from flame_jax.synthetic import head_assets

F = np.diag([1.0, -1.0, -1.0])


def _examples(root: Path, split: str = "train", n: int = 8) -> list[dict]:
    src = tfds.data_source("synthetic_heads/tiny", data_dir=str(root))[split]
    return [src[i] for i in range(n)]


def _pinhole(K: np.ndarray, X: np.ndarray) -> np.ndarray:
    uv = np.stack([K[0, 0] * X[:, 0] / X[:, 2] + K[0, 2], K[1, 1] * X[:, 1] / X[:, 2] + K[1, 2]], 1)
    return uv


def test_sizes_and_ids(synthetic_tiny: Path) -> None:
    sources = tfds.data_source("synthetic_heads/tiny", data_dir=str(synthetic_tiny))
    assert {s: len(sources[s]) for s in sources} == {"train": 64, "test": 32, "test_ood": 32}
    for split in ("test", "test_ood"):
        ids = sorted(sources[split][i]["id"].decode() for i in range(32))
        assert ids == [f"{split}_{i:06d}" for i in range(32)]


def _tz_and_s(examples: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Camera distance tz and TRG's correction scale s = tz b / (0.2 f), b the side of the square
    box around the 68 landmarks (without TRG's box_scale, a constant factor)."""
    tz = np.array([ex["t"][2] for ex in examples], np.float64)
    b = np.array([np.ptp(ex["landmarks_2d"], axis=0).max() for ex in examples], np.float64)
    f = np.array([ex["K"][0, 0] for ex in examples], np.float64)
    return tz, tz * b / (0.2 * f)


def test_ood_split_moves_translation_not_box_correction(synthetic_tiny: Path) -> None:
    """test_ood's distances lie outside train's, and its focal lengths differ, while the box-correction
    scale keeps its distribution (TRG Fig. 3): the ranges of the synthetic_heads docstring."""
    train, test, ood = (_examples(synthetic_tiny, split, n) for split, n in (("train", 64), ("test", 32), ("test_ood", 32)))
    tz_train, s_train = _tz_and_s(train)
    tz_test, _ = _tz_and_s(test)
    tz_ood, s_ood = _tz_and_s(ood)
    assert tz_train.max() <= 1.2 and tz_test.max() <= 1.2
    assert tz_ood.min() >= 1.4 > tz_train.max()
    assert np.median(tz_ood) / np.median(tz_train) > 1.8
    assert abs(np.median(s_ood) / np.median(s_train) - 1.0) < 0.1
    assert np.median([ex["K"][0, 0] for ex in ood]) > 1.5 * np.median([ex["K"][0, 0] for ex in train])


def test_geometry_is_consistent(synthetic_tiny: Path) -> None:
    head = head_assets(0)
    faces = np.asarray(head.model.faces)
    tri = np.concatenate([faces[np.asarray(head.model.dyn_lmk_faces)[0]], faces[np.asarray(head.model.lmk_faces)]])
    bary = np.concatenate([np.asarray(head.model.dyn_lmk_bary)[0], np.asarray(head.model.lmk_bary)])
    for ex in _examples(synthetic_tiny):
        R, t, K, v = ex["R"].astype(np.float64), ex["t"].astype(np.float64), ex["K"].astype(np.float64), ex["vertices"].astype(np.float64)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-5)
        assert np.linalg.det(R) > 0
        np.testing.assert_allclose(ex["face_vertices"], v[head.face_region] @ F, atol=1e-6)
        # Landmarks: barycentric points on the model-space mesh, to the camera, projected.
        lmk = np.einsum("lk,lkc->lc", bary, v[tri])
        np.testing.assert_allclose(ex["landmarks_2d"], _pinhole(K, (lmk @ F) @ R.T + t), atol=2e-3)
        # DAD-3DHeads matrices: clip = P MV [v; 1], pixels (x / w, H - y / w) match the pinhole camera.
        H = ex["image"].shape[0]
        clip = np.c_[v, np.ones(len(v))] @ (ex["projection_matrix"].astype(np.float64) @ ex["model_view_matrix"].astype(np.float64)).T
        gl = np.stack([clip[:, 0] / clip[:, 3], H - clip[:, 1] / clip[:, 3]], 1)
        np.testing.assert_allclose(gl, _pinhole(K, (v @ F) @ R.T + t), atol=2e-3)
        l, tp, r, b = ex["head_box"]
        assert 0 <= l < r <= H and 0 <= tp < b <= H
        assert ex["landmarks_visible"].dtype == bool


def test_visibility_models_self_occlusion(synthetic_tiny: Path) -> None:
    """Side views hide about half of the landmarks (the far contour and eye); frontal views hide few."""
    from scipy.spatial.transform import Rotation

    side, front = [], []
    for ex in _examples(synthetic_tiny, n=64):
        yaw = Rotation.from_matrix(ex["R"].astype(np.float64)).as_euler("yxz", degrees=True)[0]
        inside = np.all((ex["landmarks_2d"] >= 0) & (ex["landmarks_2d"] < ex["image"].shape[0]), axis=1)
        if not inside.all():
            continue
        (side if abs(yaw) > 60 else front if abs(yaw) < 25 else []).append(ex["landmarks_visible"].mean())
    assert len(side) >= 3 and len(front) >= 3
    assert np.median(side) < 0.8 < np.median(front)


def test_render_is_deterministic() -> None:
    head = head_assets(0)
    a = list(synthetic_heads.render_examples(head, "train", 32, 3, 64))
    b = list(synthetic_heads.render_examples(head, "train", 32, 3, 64))
    assert [k for k, _ in a] == ["train_000032", "train_000033", "train_000034"]
    for (_, x), (_, y) in zip(a, b):
        assert x["image"] == y["image"]
        np.testing.assert_array_equal(x["vertices"], y["vertices"])


def test_build_is_atomic_and_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = synthetic_heads.render_examples

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated interruption")
        yield from real(*args, **kwargs)

    monkeypatch.setattr(synthetic_heads, "render_examples", failing)
    with pytest.raises(KeyboardInterrupt):
        ensure_built("synthetic_heads", "tiny", str(tmp_path))
    assert not make_builder("synthetic_heads", "tiny", str(tmp_path)).is_prepared()
    assert not list(tmp_path.rglob("dataset_info.json"))  # nothing that looks finished
    monkeypatch.setattr(synthetic_heads, "render_examples", real)
    ensure_built("synthetic_heads", "tiny", str(tmp_path))
    info = next(tmp_path.rglob("dataset_info.json"))
    stamp = info.stat().st_mtime_ns
    ensure_built("synthetic_heads", "tiny", str(tmp_path))  # a finished build is left alone
    assert info.stat().st_mtime_ns == stamp


def test_unknown_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no config 'huge'.*tiny"):
        make_builder("synthetic_heads", "huge", str(tmp_path))
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        make_builder("nope", None, str(tmp_path))
