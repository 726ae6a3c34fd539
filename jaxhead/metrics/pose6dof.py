"""6DoF head pose and face reconstruction metrics of TRG (util/metric.py, test.py), numpy/scipy.

Poses are X_cam = R X + t (column vectors), R (N, 3, 3), t (N, 3) metres; vertices in
metres, head frame. Errors are reported in degrees and millimetres.

- yaw/pitch/roll: scipy `from_matrix(R).as_euler('yxz', degrees=True)` of prediction and
  ground truth, absolute difference **without wrapping**, as the official evaluation (a
  +179/-179 degree pair counts 358). `euler_errors_wrapped` is the wrapped alternative,
  which the official code has but does not report.
- MAE_r = mean of the three; GE = arccos(clip((tr(R_p R_g^T) - 1) / 2, -1 + 1e-7, 1 - 1e-7)).
- tx/ty/tz: |t_p - t_g| per axis; MAE_t = mean of the three.
- ADD: mean over the GT world vertices v of |(R_p v + t_p) - (R_g v + t_g)|.
- 3D reconstruction: per-sample mean vertex distance |V_p - V_g| (head frame, no alignment),
  then mean and median over samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

M_TO_MM = 1000.0
GE_EPS = 1e-7


def euler_yxz(R: np.ndarray) -> np.ndarray:
    """(N, 3, 3) -> (N, 3) (yaw, pitch, roll) degrees, scipy extrinsic 'yxz'."""
    return Rotation.from_matrix(np.asarray(R, np.float64)).as_euler("yxz", degrees=True)


def euler_errors(R_pred: np.ndarray, R_gt: np.ndarray) -> np.ndarray:
    """(N, 3) |yaw, pitch, roll differences| in degrees, not wrapped (the official metric)."""
    return np.abs(euler_yxz(R_gt) - euler_yxz(R_pred))


def euler_errors_wrapped(R_pred: np.ndarray, R_gt: np.ndarray) -> np.ndarray:
    """(N, 3) Euler differences wrapped to [-180, 180) before the absolute value."""
    d = euler_yxz(R_gt) - euler_yxz(R_pred)
    return np.abs((d + 180.0) % 360.0 - 180.0)


def geodesic_error_deg(R_pred: np.ndarray, R_gt: np.ndarray) -> np.ndarray:
    """(N,) angle of R_pred R_gt^T in degrees (cosine clipped as the official metric)."""
    m = np.einsum("nij,nkj->nik", np.asarray(R_pred, np.float64), np.asarray(R_gt, np.float64))
    cos = (np.trace(m, axis1=1, axis2=2) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0 + GE_EPS, 1.0 - GE_EPS)))


def translation_errors_mm(t_pred: np.ndarray, t_gt: np.ndarray) -> np.ndarray:
    """(N, 3) per-axis |t_pred - t_gt| in mm."""
    return np.abs(np.asarray(t_pred, np.float64) - np.asarray(t_gt, np.float64)) * M_TO_MM


def _transform(R: np.ndarray, t: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("nij,nvj->nvi", R, v) + t[:, None, :]


def add_mm(
    R_pred: np.ndarray, t_pred: np.ndarray, R_gt: np.ndarray, t_gt: np.ndarray, vertices: np.ndarray
) -> np.ndarray:
    """(N,) ADD in mm over GT world vertices, (N, V, 3) or one shared (V, 3) template."""
    R_pred, t_pred, R_gt, t_gt = (np.asarray(a, np.float64) for a in (R_pred, t_pred, R_gt, t_gt))
    v = np.broadcast_to(np.asarray(vertices, np.float64), (R_pred.shape[0],) + np.shape(vertices)[-2:])
    diff = _transform(R_pred, t_pred, v) - _transform(R_gt, t_gt, v)
    return np.linalg.norm(diff, axis=-1).mean(axis=-1) * M_TO_MM


def reconstruction_error_mm(vertices_pred: np.ndarray, vertices_gt: np.ndarray) -> np.ndarray:
    """(N,) per-sample mean vertex distance in mm, (N, V, 3) x2, no alignment."""
    d = np.asarray(vertices_pred, np.float64) - np.asarray(vertices_gt, np.float64)
    return np.linalg.norm(d, axis=-1).mean(axis=-1) * M_TO_MM


def per_sample_metrics(
    R_pred: np.ndarray,
    t_pred: np.ndarray,
    R_gt: np.ndarray,
    t_gt: np.ndarray,
    vertices_gt: np.ndarray,
    vertices_pred: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every per-sample metric, each (N,): yaw, pitch, roll, ge (degrees), tx, ty, tz, add (mm)
    and, when `vertices_pred` (N, V, 3) is given (same vertices as `vertices_gt`), recon (mm)."""
    eul = euler_errors(R_pred, R_gt)
    trans = translation_errors_mm(t_pred, t_gt)
    out = dict(
        yaw=eul[:, 0],
        pitch=eul[:, 1],
        roll=eul[:, 2],
        ge=geodesic_error_deg(R_pred, R_gt),
        tx=trans[:, 0],
        ty=trans[:, 1],
        tz=trans[:, 2],
        add=add_mm(R_pred, t_pred, R_gt, t_gt, vertices_gt),
    )
    if vertices_pred is not None:
        out["recon"] = reconstruction_error_mm(vertices_pred, vertices_gt)
    return out


def aggregate(per_sample: Sequence[Mapping[str, np.ndarray | float]]) -> dict[str, float]:
    """The paper's table row from per-sample metrics (dicts of scalars or of (B,) batches).

    Returns yaw, pitch, roll, MAE_r, GE (degrees), tx, ty, tz, MAE_t, ADD (mm) and, when
    `recon` is present, recon_mean and recon_median (mm); every value a mean over samples.
    """
    if not per_sample:
        raise ValueError("aggregate needs at least one per-sample metric dict")
    keys = per_sample[0].keys()
    cols = {
        k: np.concatenate([np.atleast_1d(np.asarray(d[k], np.float64)) for d in per_sample]) for k in keys
    }
    row = {k: float(np.mean(cols[k])) for k in ("yaw", "pitch", "roll")}
    row["MAE_r"] = (row["yaw"] + row["pitch"] + row["roll"]) / 3.0
    row["GE"] = float(np.mean(cols["ge"]))
    row.update({k: float(np.mean(cols[k])) for k in ("tx", "ty", "tz")})
    row["MAE_t"] = (row["tx"] + row["ty"] + row["tz"]) / 3.0
    row["ADD"] = float(np.mean(cols["add"]))
    if "recon" in cols:
        row["recon_mean"] = float(np.mean(cols["recon"]))
        row["recon_median"] = float(np.median(cols["recon"]))
    return row
