"""The DAD-3DHeads benchmark protocol (official `dad_3dheads_benchmark/`), in numpy/scipy.

Per image (../shared/specs/dad3dnet.md §11):
  NME      100 * mean_68 ||gt - pred||_2 / sqrt(w h) of the metadata head box, with gt = the 68
           landmarks of the model-space GT mesh pushed through MV and P (pixels, top-left origin).
  Z_n      depth-order agreement on the 3669-vertex head subset between the GT world mesh
           (MV applied, all axes negated so z is depth) and the submitted vertices, n = 5.
           `mode="official"` reproduces the released code, which pairs vertex i with S[i, j],
           j = 1..n, where S = argsort of the GT distance matrix along axis 0, i.e. with the
           i-th nearest vertex of vertex j (comparisons with >=). `mode="paper"` pairs each
           vertex with its own n nearest neighbours, as the paper defines Z_n.
  Chamfer  GT world mesh scaled so the inner eye corners (landmarks 39, 42) are 20 apart; the
           submitted 7 keypoints aligned onto the GT ones (landmarks 36, 39, 42, 45, 33, 48, 54)
           by a similarity Procrustes (scaling on, reflection allowed when it fits better) and
           the transform applied to all submitted vertices; then the mean over the GT face
           vertices of the squared distance to the nearest aligned vertex (one-sided).
  Pose     ||I - R_pred R_gt^T||_F with R_gt = (diag(1, -1, -1, 1) MV)[:3, :3].
Results are averaged over images, overall and per (attribute, value) group.

Submission JSON (official format): {item_id: {"68_landmarks_2d": 68x2 (original-image pixels),
"N_landmarks_3d": Nx3 (the 5023 FLAME vertices for Z_n), "7_landmarks_3d": 7x3,
"rotation_matrix": 3x3}}.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.spatial import cKDTree

from flame_jax.dad_ground_truth import LandmarkEmbedding, gt_landmarks_2d, to_homogeneous_world

SEVEN_LANDMARKS = (36, 39, 42, 45, 33, 48, 54)
INNER_EYE_CORNERS = (39, 42)
INTER_EYE_DISTANCE = 20.0
# OpenGL camera (y up, z backward) -> the crop frame of DAD-3DNet's rotation.
GL_FLIP = np.diag([1.0, -1.0, -1.0, 1.0])
SUBMISSION_FIELDS = {
    "68_landmarks_2d": (68, 2),
    "N_landmarks_3d": (None, 3),
    "7_landmarks_3d": (7, 3),
    "rotation_matrix": (3, 3),
}
# The paper's Table 4 columns "Pose / Expr. / Occl." as (attribute, value); mapping unverified.
PAPER_SUBSETS = {
    "pose": ("pose", "atypical"),
    "expression": ("expression", "true"),
    "occlusion": ("occlusions", "true"),
}
METRICS = ("nme", "z5", "chamfer", "pose_error")


def nme(pred_2d: np.ndarray, gt_2d: np.ndarray, bbox_xywh: Iterable[float]) -> float:
    """NME in %: 100 mean_k ||gt_k - pred_k|| / sqrt(w h). pred_2d, gt_2d (K, 2); bbox [x, y, w, h]."""
    _, _, w, h = (float(b) for b in bbox_xywh)
    err = np.linalg.norm(np.asarray(gt_2d, np.float64) - np.asarray(pred_2d, np.float64), axis=-1)
    return float(100.0 * np.mean(err / np.sqrt(w * h)))


def _zn_partners(gt: np.ndarray, n: int, mode: str) -> np.ndarray:
    """(K, n) partner index of each (vertex, j)."""
    if mode == "official":
        # S = argsort(D, axis=0); partner(i, j) = S[i, j] for j = 1..n: only columns 1..n are needed.
        d = np.linalg.norm(gt[:, None, :] - gt[None, 1 : n + 1, :], axis=-1)  # (K, n)
        return np.argsort(d, axis=0, kind="stable")
    if mode == "paper":
        _, idx = cKDTree(gt).query(gt, k=n + 1)
        # Drop the vertex itself (normally the first hit; with duplicated points maybe not).
        keep = idx != np.arange(len(gt))[:, None]
        return np.stack([row[k][:n] for row, k in zip(idx, keep, strict=True)])
    raise ValueError(f'Z_n mode must be "official" or "paper", got {mode!r}')


def zn_accuracy(
    pred: np.ndarray, gt: np.ndarray, n: int = 5, mode: Literal["official", "paper"] = "official"
) -> float:
    """Z_n depth-order accuracy between (K, 3) point sets of the same topology.

    The fraction of (vertex, partner) pairs whose z order (>=) agrees between gt and pred.
    `gt` is the depth-oriented GT (the benchmark passes world vertices times -1).
    """
    gt = np.asarray(gt, np.float64)
    pred = np.asarray(pred, np.float64)
    if gt.shape != pred.shape or gt.ndim != 2 or gt.shape[1] != 3:
        raise ValueError(f"Z_n needs two (K, 3) arrays of equal shape, got {pred.shape} and {gt.shape}")
    partners = _zn_partners(gt, n, mode)
    zg, zp = gt[:, 2], pred[:, 2]
    agree = (zg[:, None] >= zg[partners]) == (zp[:, None] >= zp[partners])
    return float(np.mean(agree))


def similarity_procrustes(X: np.ndarray, Y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity transform mapping Y onto X in least squares: X ~ s Y T + c (row vectors).

    Scaling on and reflection allowed ("best", MATLAB `procrustes`), as the benchmark.

    Args:
      X, Y: (K, 3) target and source points.

    Returns:
      (s, T (3, 3), c (3,)).
    """
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    mx, my = X.mean(0), Y.mean(0)
    X0, Y0 = X - mx, Y - my
    nx, ny = np.linalg.norm(X0), np.linalg.norm(Y0)
    U, sv, Vt = np.linalg.svd((X0 / nx).T @ (Y0 / ny))
    T = Vt.T @ U.T
    s = sv.sum() * nx / ny
    return float(s), T, mx - s * my @ T


def chamfer(
    gt_world: np.ndarray,
    gt_landmarks_world: np.ndarray,
    pred_vertices: np.ndarray,
    pred_7: np.ndarray,
    face_indices: np.ndarray,
) -> float:
    """One-sided squared Chamfer distance GT face -> aligned prediction.

    Args:
      gt_world: (V, 3) GT world vertices (MV applied).
      gt_landmarks_world: (68, 3) the 68 landmarks of `gt_world` (`LandmarkEmbedding`).
      pred_vertices: (M, 3) submitted vertices.
      pred_7: (7, 3) submitted keypoints (the 68-landmark indices `SEVEN_LANDMARKS` on its mesh).
      face_indices: (F,) GT face-subset vertex ids (2094 for FLAME).
    """
    lmk = np.asarray(gt_landmarks_world, np.float64)
    a, b = INNER_EYE_CORNERS
    scale = INTER_EYE_DISTANCE / np.linalg.norm(lmk[a] - lmk[b])
    gt7 = scale * lmk[list(SEVEN_LANDMARKS)]
    s, T, c = similarity_procrustes(gt7, pred_7)
    aligned = s * np.asarray(pred_vertices, np.float64) @ T + c
    gt_face = scale * np.asarray(gt_world, np.float64)[np.asarray(face_indices)]
    d, _ = cKDTree(aligned).query(gt_face, k=1)
    return float(np.mean(d**2))


def gt_rotation(model_view: np.ndarray) -> np.ndarray:
    """R_gt = (diag(1, -1, -1, 1) MV)[:3, :3], (4, 4) -> (3, 3)."""
    return (GL_FLIP @ np.asarray(model_view, np.float64))[:3, :3]


def pose_error(R_pred: np.ndarray, R_gt: np.ndarray) -> float:
    """||I - R_pred R_gt^T||_F for (3, 3) matrices."""
    return float(np.linalg.norm(np.eye(3) - np.asarray(R_pred, np.float64) @ np.asarray(R_gt, np.float64).T))


def score_item(
    gt: Mapping[str, Any],
    pred: Mapping[str, Any],
    *,
    embedding: LandmarkEmbedding,
    head_indices: np.ndarray,
    face_indices: np.ndarray,
    zn_mode: Literal["official", "paper"] = "official",
    n: int = 5,
) -> dict[str, float]:
    """All four metrics of one image.

    Args:
      gt: a benchmark GT record: `vertices` (V, 3) model space, `model_view_matrix`,
        `projection_matrix` (4, 4), `bbox` [x, y, w, h], `image_height`.
      pred: a submission entry (see `SUBMISSION_FIELDS`).
      embedding: the 68-landmark embedding of the FLAME topology.
      head_indices: (3669,) vertex ids of the benchmark head subset (Z_n).
      face_indices: (2094,) vertex ids of the face subset (Chamfer).
    """
    v = np.asarray(gt["vertices"], np.float64)
    mv = np.asarray(gt["model_view_matrix"], np.float64)
    world = to_homogeneous_world(v, mv)
    gt_2d = gt_landmarks_2d(embedding(v), mv, gt["projection_matrix"], float(gt["image_height"]))
    pred_v = np.asarray(pred["N_landmarks_3d"], np.float64)
    return {
        "nme": nme(pred["68_landmarks_2d"], gt_2d, gt["bbox"]),
        f"z{n}": zn_accuracy(pred_v[head_indices], -world[head_indices], n=n, mode=zn_mode),
        "chamfer": chamfer(world, embedding(world), pred_v, pred["7_landmarks_3d"], face_indices),
        "pose_error": pose_error(pred["rotation_matrix"], gt_rotation(mv)),
    }


def _attr_key(value: Any) -> str:
    # JSON attributes mix booleans and strings; report both as lower-case strings.
    return str(value).lower()


def summarize(
    per_item: Mapping[str, Mapping[str, float]], attributes: Mapping[str, Mapping[str, Any] | None]
) -> tuple[dict[str, float], dict[str, dict[str, dict[str, float]]]]:
    """Means over images, overall and per attribute value.

    Args:
      per_item: item_id -> {metric: value}.
      attributes: item_id -> {attribute: value} or None (e.g. the val split has none).

    Returns:
      (overall {metric: mean}, by_attribute {metric: {attribute: {value: mean}}}).
    """
    overall: dict[str, list[float]] = defaultdict(list)
    groups: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for item_id, metrics in per_item.items():
        for name, value in metrics.items():
            overall[name].append(value)
            for attr, attr_value in (attributes.get(item_id) or {}).items():
                groups[name][attr][_attr_key(attr_value)].append(value)
    by_attribute = {
        name: {
            attr: {val: float(np.mean(vs)) for val, vs in values.items()} for attr, values in attrs.items()
        }
        for name, attrs in groups.items()
    }
    return {name: float(np.mean(vs)) for name, vs in overall.items()}, by_attribute


def paper_subsets(
    by_attribute: Mapping[str, Mapping[str, Mapping[str, float]]],
) -> dict[str, dict[str, float]]:
    """The paper's Table 4 subset columns {metric: {"pose"|"expression"|"occlusion": mean}} where present."""
    out: dict[str, dict[str, float]] = {}
    for name, attrs in by_attribute.items():
        cols = {col: attrs[a][v] for col, (a, v) in PAPER_SUBSETS.items() if a in attrs and v in attrs[a]}
        if cols:
            out[name] = cols
    return out


def evaluate(
    submission: Mapping[str, Mapping[str, Any]],
    ground_truth: Iterable[Mapping[str, Any]],
    *,
    embedding: LandmarkEmbedding,
    head_indices: np.ndarray,
    face_indices: np.ndarray,
    zn_mode: Literal["official", "paper"] = "official",
) -> tuple[dict[str, float], dict[str, dict[str, dict[str, float]]], list[str]]:
    """Scores a submission against benchmark GT records.

    Unlike the official script, which silently skips any item that raises, only items without
    a prediction are skipped, and their ids are returned.

    Returns:
      (overall, by_attribute, missing item ids).
    """
    per_item: dict[str, dict[str, float]] = {}
    attributes: dict[str, Mapping[str, Any] | None] = {}
    missing: list[str] = []
    for gt in ground_truth:
        item_id = gt["id"]
        if item_id not in submission:
            missing.append(item_id)
            continue
        per_item[item_id] = score_item(
            gt,
            submission[item_id],
            embedding=embedding,
            head_indices=head_indices,
            face_indices=face_indices,
            zn_mode=zn_mode,
        )
        attributes[item_id] = gt.get("attributes")
    overall, by_attribute = summarize(per_item, attributes)
    return overall, by_attribute, missing


def submission_entry(
    landmarks_2d: np.ndarray, vertices: np.ndarray, rotation: np.ndarray, embedding: LandmarkEmbedding
) -> dict[str, np.ndarray]:
    """A DAD-3DNet prediction in submission form; the 7 keypoints are taken on its own mesh.

    Args:
      landmarks_2d: (68, 2) original-image pixels.
      vertices: (V, 3) the head mesh (FLAME + offset, rotated, no scale), as `3d_vertices`.
      rotation: (3, 3) R from the 6D rotation.
    """
    lmk = embedding(vertices)
    return {
        "68_landmarks_2d": np.asarray(landmarks_2d),
        "N_landmarks_3d": np.asarray(vertices),
        "7_landmarks_3d": lmk[list(SEVEN_LANDMARKS)],
        "rotation_matrix": np.asarray(rotation),
    }


def _check_entry(item_id: str, entry: Mapping[str, Any], where: str) -> dict[str, np.ndarray]:
    out = {}
    for field, shape in SUBMISSION_FIELDS.items():
        if field not in entry:
            raise KeyError(
                f"{where}: item {item_id!r} has no field {field!r} (expected {sorted(SUBMISSION_FIELDS)})"
            )
        a = np.asarray(entry[field], np.float64)
        if a.ndim != 2 or any(e is not None and e != d for e, d in zip(shape, a.shape, strict=True)):
            want = "x".join("N" if e is None else str(e) for e in shape)
            raise ValueError(
                f"{where}: item {item_id!r} field {field!r} has shape {a.shape}, expected {want}"
            )
        out[field] = a
    return out


def write_submission(path: str | Path, predictions: Mapping[str, Mapping[str, Any]]) -> None:
    """Writes {item_id: entry} as the official submission JSON (atomically)."""
    path = Path(path)
    doc = {
        str(k): {f: a.tolist() for f, a in _check_entry(str(k), e, str(path)).items()}
        for k, e in predictions.items()
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_submission(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Reads a submission JSON into {item_id: {field: float64 array}}, checking fields and shapes."""
    with open(path) as f:
        doc = json.load(f)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: a submission is a JSON object item_id -> entry, got {type(doc).__name__}")
    return {k: _check_entry(k, e, str(path)) for k, e in doc.items()}


def read_ground_truth(path: str | Path) -> list[dict[str, Any]]:
    """Reads a benchmark GT file (a JSON list of records, see `score_item`)."""
    with open(path) as f:
        doc = json.load(f)
    if not isinstance(doc, list):
        raise ValueError(
            f"{path}: benchmark ground truth is a JSON list of records, got {type(doc).__name__}"
        )
    for rec in doc:
        for key in ("id", "bbox", "vertices", "model_view_matrix", "projection_matrix", "image_height"):
            if key not in rec:
                raise KeyError(f"{path}: record {rec.get('id', '?')!r} has no key {key!r}")
    return doc
