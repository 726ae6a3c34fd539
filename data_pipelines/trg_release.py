"""The official TRG-Release asset files a user's checkout provides: Apple's ARKit face topology
and the model's initial face and pose (spec trg.md). Pickles go through the restricted unpickler.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from flame_jax.safe_pickle import safe_load

# Files of an official TRG-Release checkout (relative to its root).
ARKIT_SUBSAMPLE = "data/arkit_subsample.pkl"
ARKIT_SUBSAMPLE_KEY = "1220_to_305"
ARKIT_KPT_IND = "npy/kpt_ind.npy"
ARKIT_TRIANGLES = "data/triangles.npy"
ARKIT_INIT = "data/init_vtx_cam.pkl"


def load_arkit_topology(trg_assets: str | Path) -> dict[str, np.ndarray]:
    """The official ARKit face topology from a TRG-Release checkout (user-supplied data).

    Returns:
      subsample: (305,) int32 sorted vertex ids (`data/arkit_subsample.pkl`, key `1220_to_305`).
      kpt_ind: (68,) int64 iBUG landmark vertex ids (`npy/kpt_ind.npy`).
      triangles: (2304, 3) int64 (`data/triangles.npy`, stored as uint16).
    """
    root = Path(trg_assets)
    paths = {
        name: root / rel
        for name, rel in (
            ("subsample", ARKIT_SUBSAMPLE),
            ("kpt_ind", ARKIT_KPT_IND),
            ("triangles", ARKIT_TRIANGLES),
        )
    }
    absent = [str(p) for p in paths.values() if not p.is_file()]
    if absent:
        raise FileNotFoundError(
            f"{root} is not a TRG-Release checkout with the ARKit topology files; "
            f"missing: {', '.join(absent)}"
        )
    table = safe_load(paths["subsample"])
    if not isinstance(table, Mapping) or ARKIT_SUBSAMPLE_KEY not in table:
        raise ValueError(f"{paths['subsample']}: expected a dict with key {ARKIT_SUBSAMPLE_KEY!r}")
    subsample = np.asarray(table[ARKIT_SUBSAMPLE_KEY], np.int32)
    kpt_ind = np.load(paths["kpt_ind"]).astype(np.int64)
    triangles = np.load(paths["triangles"]).astype(np.int64)
    for name, arr, shape in (
        ("subsample", subsample, (305,)),
        ("kpt_ind", kpt_ind, (68,)),
        ("triangles", triangles, (2304, 3)),
    ):
        if arr.shape != shape:
            raise ValueError(f"{paths[name]}: expected shape {shape}, got {arr.shape}")
    return dict(subsample=subsample, kpt_ind=kpt_ind, triangles=triangles)


def load_official_init(trg_assets: str | Path) -> dict[str, np.ndarray]:
    """The official initial state from `data/init_vtx_cam.pkl` of a TRG-Release checkout.

    Returns init_face (1220, 3) float32 metres (head frame, `t_vtx_1220`), and init_rotation
    (3, 3) and init_translation (3,) float32 of the pickled row-vector `R_t`. The official model
    starts from that rotation and ignores the translation, which only the "t_prediction"
    variant uses (`jaxhead.models.trg.initial_pose`).
    """
    path = Path(trg_assets) / ARKIT_INIT
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (expected a TRG-Release checkout)")
    data = safe_load(path)
    if not isinstance(data, Mapping) or not {"t_vtx_1220", "R_t"} <= set(data):
        raise ValueError(f"{path}: expected a dict with keys 't_vtx_1220' and 'R_t'")
    R_t = np.asarray(data["R_t"], np.float32)
    if R_t.shape != (4, 4):
        raise ValueError(f"{path}: R_t must be 4x4 (row-vector form), got {R_t.shape}")
    pose = R_t.T  # row-vector storage: [[R, t], [0, 1]] transposed
    face = np.asarray(data["t_vtx_1220"], np.float32)
    return dict(init_face=face, init_rotation=pose[:3, :3].copy(), init_translation=pose[:3, 3].copy())
