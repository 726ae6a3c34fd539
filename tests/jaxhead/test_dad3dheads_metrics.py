"""DAD-3DHeads benchmark metrics: hand cases and brute-force reimplementations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jaxhead.metrics.dad3dheads import (
    LandmarkEmbedding,
    chamfer,
    evaluate,
    gt_landmarks_2d,
    gt_rotation,
    nme,
    paper_subsets,
    pose_error,
    read_submission,
    similarity_procrustes,
    submission_entry,
    summarize,
    to_homogeneous_world,
    write_submission,
    zn_accuracy,
)

FLIP = np.diag([1.0, -1.0, -1.0, 1.0])


# ---- brute-force references ----


def zn_official_loops(pred, gt, n):
    """The released code's loops: S = argsort(D, axis 0); pair i with S[i, j], j = 1..n."""
    K = len(gt)
    D = np.array([[np.linalg.norm(gt[a] - gt[b]) for b in range(K)] for a in range(K)])
    S = np.argsort(D, axis=0, kind="stable")
    hits = [
        (gt[i, 2] >= gt[S[i, j], 2]) == (pred[i, 2] >= pred[S[i, j], 2])
        for i in range(K)
        for j in range(1, n + 1)
    ]
    return np.mean(hits)


def zn_paper_loops(pred, gt, n):
    """Each vertex against its own n nearest other vertices."""
    K = len(gt)
    hits = []
    for i in range(K):
        d = [(np.linalg.norm(gt[i] - gt[k]), k) for k in range(K) if k != i]
        for _, k in sorted(d)[:n]:
            hits.append((gt[i, 2] >= gt[k, 2]) == (pred[i, 2] >= pred[k, 2]))
    return np.mean(hits)


def chamfer_brute(gt_face, pred):
    return np.mean([min(np.sum((g - p) ** 2) for p in pred) for g in gt_face])


# ---- metrics ----


def test_nme_hand_case():
    gt = np.zeros((68, 2))
    pred = gt + [3.0, 4.0]  # error 5 px everywhere
    assert nme(pred, gt, [7, 9, 10, 10]) == pytest.approx(50.0)
    assert nme(pred, gt, [0, 0, 25, 4]) == pytest.approx(50.0)


def test_gt_landmarks_2d_hand_case():
    """A camera looking down -z: P holds f = 100, principal point (50, 40), H = 80."""
    H = 80.0
    P = np.array([[100, 0, -50, 0], [0, 100, -(H - 40), 0], [0, 0, -1, -0.2], [0, 0, -1, 0]], float)
    pts = np.array([[0.0, 0.0, -2.0], [0.2, 0.1, -1.0]])
    # w = -z: x_px = 100 x / -z + 50, y_gl = 100 y / -z + 40, row = H - y_gl.
    want = np.array([[50.0, H - 40.0], [70.0, H - (10.0 + 40.0)]])
    np.testing.assert_allclose(gt_landmarks_2d(pts, np.eye(4), P, H), want)


@pytest.mark.parametrize("mode,ref", [("official", zn_official_loops), ("paper", zn_paper_loops)])
def test_zn_against_loops(mode, ref):
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(60, 3))
    pred = gt + rng.normal(scale=0.4, size=gt.shape)
    assert zn_accuracy(pred, gt, n=5, mode=mode) == pytest.approx(ref(pred, gt, 5))
    assert zn_accuracy(gt * [2, 1, 3], gt, n=5, mode=mode) == 1.0  # same depth order
    assert 0.0 < zn_accuracy(pred, gt, mode=mode) < 1.0


def test_zn_modes_differ():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(80, 3))
    pred = gt + rng.normal(scale=0.5, size=gt.shape)
    assert zn_accuracy(pred, gt, mode="official") != zn_accuracy(pred, gt, mode="paper")
    with pytest.raises(ValueError, match="mode"):
        zn_accuracy(pred, gt, mode="sorted")


def test_procrustes_recovers_similarity_with_reflection():
    rng = np.random.default_rng(2)
    Y = rng.normal(size=(7, 3))
    for det in (1.0, -1.0):
        T = Rotation.from_rotvec([0.3, -0.7, 1.1]).as_matrix() @ np.diag([1, 1, det])
        X = 2.5 * Y @ T + [1.0, -2.0, 0.5]
        s, T_hat, c = similarity_procrustes(X, Y)
        assert s == pytest.approx(2.5)
        np.testing.assert_allclose(T_hat, T, atol=1e-10)
        np.testing.assert_allclose(c, [1.0, -2.0, 0.5], atol=1e-10)


def _embedding(rng, V):
    faces = rng.integers(0, V, size=(3 * V, 3))
    bary = rng.uniform(0.1, 1, size=(68, 3))
    return LandmarkEmbedding(faces, rng.integers(0, 3 * V, size=68), bary / bary.sum(1, keepdims=True))


def test_chamfer():
    rng = np.random.default_rng(3)
    V = 50
    emb = _embedding(rng, V)
    gt = rng.normal(size=(V, 3))
    face = np.sort(rng.choice(V, 30, replace=False))
    # A similarity copy of the GT aligns exactly: distance 0.
    T = Rotation.from_rotvec([0.2, 0.4, -0.1]).as_matrix()
    pred = 0.3 * gt @ T + [5, 6, 7]
    assert chamfer(gt, emb(gt), pred, emb(pred)[[36, 39, 42, 45, 33, 48, 54]], face) == pytest.approx(
        0, abs=1e-18
    )
    # Against brute force, with a perturbed prediction.
    noisy = pred + rng.normal(scale=0.05, size=pred.shape)
    k7 = emb(noisy)[[36, 39, 42, 45, 33, 48, 54]]
    lmk = emb(gt)
    scale = 20.0 / np.linalg.norm(lmk[39] - lmk[42])
    s, T_hat, c = similarity_procrustes(scale * lmk[[36, 39, 42, 45, 33, 48, 54]], k7)
    want = chamfer_brute(scale * gt[face], s * noisy @ T_hat + c)
    assert chamfer(gt, lmk, noisy, k7, face) == pytest.approx(want, rel=1e-10)


def test_pose_error_hand_cases():
    Rz = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    assert pose_error(Rz, np.eye(3)) == pytest.approx(2.0)  # I - Rz = [[1,1,0],[-1,1,0],[0,0,0]]
    assert pose_error(Rz, Rz) == pytest.approx(0.0, abs=1e-12)
    R = Rotation.from_rotvec([0.1, 0.5, -0.3]).as_matrix()
    MV = FLIP @ np.block([[R, np.array([[0.1], [0.0], [2.0]])], [np.zeros((1, 3)), np.ones((1, 1))]])
    np.testing.assert_allclose(gt_rotation(MV), R, atol=1e-12)


def test_summarize_by_attribute():
    per_item = {"a": {"nme": 1.0}, "b": {"nme": 3.0}, "c": {"nme": 5.0}}
    attrs = {
        "a": {"pose": "atypical", "expression": True},
        "b": {"pose": "front", "expression": False},
        "c": None,
    }
    overall, by_attr = summarize(per_item, attrs)
    assert overall == {"nme": 3.0}
    assert by_attr["nme"]["pose"] == {"atypical": 1.0, "front": 3.0}
    assert by_attr["nme"]["expression"] == {"true": 1.0, "false": 3.0}
    assert paper_subsets(by_attr) == {"nme": {"pose": 1.0, "expression": 1.0}}


def test_submission_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    preds = {
        f"item{i}": {
            "68_landmarks_2d": rng.uniform(0, 500, (68, 2)).astype(np.float32),
            "N_landmarks_3d": rng.normal(size=(30, 3)).astype(np.float32),
            "7_landmarks_3d": rng.normal(size=(7, 3)),
            "rotation_matrix": Rotation.random(random_state=i).as_matrix(),
        }
        for i in range(3)
    }
    path = tmp_path / "submission.json"
    write_submission(path, preds)
    doc = json.loads(path.read_text())
    assert set(doc["item0"]) == {"68_landmarks_2d", "N_landmarks_3d", "7_landmarks_3d", "rotation_matrix"}
    back = read_submission(path)
    for k, entry in preds.items():
        for f, a in entry.items():
            assert np.array_equal(back[k][f], np.asarray(a, np.float64)), (k, f)
    bad = {"x": dict(preds["item0"], rotation_matrix=np.eye(4))}
    with pytest.raises(ValueError, match="rotation_matrix"):
        write_submission(tmp_path / "bad.json", bad)
    assert not (tmp_path / "bad.json").exists()


def test_perfect_prediction_scores_perfectly(tmp_path):
    """GT built in the official frames; the prediction is DAD-3DNet's own view of the same head."""
    rng = np.random.default_rng(5)
    V = 60
    emb = _embedding(rng, V)
    head, face = np.arange(V), np.sort(rng.choice(V, 40, replace=False))
    v = rng.normal(scale=0.1, size=(V, 3))
    R = Rotation.from_rotvec([0.2, -0.4, 0.1]).as_matrix() @ np.diag([1.0, -1.0, -1.0])
    t = np.array([0.02, -0.01, -0.6])
    MV = FLIP @ np.block([[R, t[:, None]], [np.zeros((1, 3)), np.ones((1, 1))]])
    P = np.array([[500, 0, -200, 0], [0, 500, -(300 - 150), 0], [0, 0, -1, -0.2], [0, 0, -1, 0]], float)
    gt = {
        "id": "im0",
        "bbox": [100, 50, 200, 220],
        "vertices": v.tolist(),
        "model_view_matrix": MV.tolist(),
        "projection_matrix": P.tolist(),
        "image_height": 300,
        "attributes": {"pose": "sided", "occlusions": False},
    }
    lmk2d = gt_landmarks_2d(emb(v), MV, P, 300)
    entry = submission_entry(lmk2d, v @ R.T, R, emb)
    write_submission(tmp_path / "s.json", {"im0": entry})
    overall, by_attr, missing = evaluate(
        read_submission(tmp_path / "s.json"),
        [gt, dict(gt, id="im1")],
        embedding=emb,
        head_indices=head,
        face_indices=face,
    )
    assert missing == ["im1"]
    assert overall["nme"] == pytest.approx(0, abs=1e-6)
    assert overall["z5"] == 1.0
    assert overall["chamfer"] == pytest.approx(0, abs=1e-8)
    assert overall["pose_error"] == pytest.approx(0, abs=1e-6)
    assert by_attr["z5"]["pose"] == {"sided": 1.0}
    # The Z_n GT is the world mesh negated: depth along +z.
    np.testing.assert_allclose(-to_homogeneous_world(v, MV)[:, 2], (v @ R.T + t)[:, 2])
