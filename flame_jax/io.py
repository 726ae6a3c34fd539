"""Loading FLAME models and landmark embeddings from the official files, safely.

- `load_flame_arrays(path)`: the raw arrays of a FLAME pickle (2020 with chumpy objects, 2023, 2023
  Open) read through the restricted unpickler (`flame_jax.safe_pickle`, chumpy not needed, nothing
  executed), or of a converted `.npz` (`python -m flame_jax.convert`). Validated: every error names
  the file and the key.
- `load_embeddings(static_pkl, dynamic_npy)`: RingNet's / DAD-3DHeads' 68-landmark embeddings.
- `load_flame(path, ...)`: a `FlameModel` with the chosen numbers of components (and embeddings).
- `load_flame_for_dad3dheads(model_path, static_dir)`: FLAME plus DAD-3DHeads' `model/static`
  directory (embeddings and the face / head / face_w_ears vertex subsets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from flame_jax.model import FLAME_PARENTS, NUM_JOINTS, NUM_POSE_FEATURES, FlameModel, build_flame_model
from flame_jax.safe_pickle import safe_load, safe_load_npy

REQUIRED_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")
FLAME_SHAPE_COMPONENTS = 300  # expression columns start here in FLAME files
DAD_SUBSETS = ("face", "head", "face_w_ears", "eyeballs")


class FlameFileError(ValueError):
    """A FLAME or embedding file lacks a key, or holds one of the wrong shape or non-finite values."""


def _dense(x: Any) -> np.ndarray:
    """Arrays, scipy sparse matrices and the sparse shim of safe_pickle -> dense ndarray."""
    if hasattr(x, "toarray"):
        return np.asarray(x.toarray())
    return np.asarray(x)


def _check(where: str, key: str, x: np.ndarray, shape: tuple[int | None, ...]) -> None:
    if x.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise FlameFileError(f"{where}: key {key!r} has shape {x.shape}, expected {want}")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise FlameFileError(f"{where}: key {key!r} holds NaN or infinite values")


def validate_flame_arrays(arrays: Mapping[str, Any], where: str) -> dict[str, np.ndarray]:
    """Checks keys, shapes, finiteness and the kinematic tree; returns float64 / int arrays.

    Returns v_template (V, 3), f (F, 3) int64, shapedirs (V, 3, N), posedirs (V, 3, 36),
    J_regressor (5, V) dense, weights (V, 5), parents (5,).
    """
    missing = [k for k in REQUIRED_KEYS if k not in arrays and not (k == "kintree_table" and "parents" in arrays)]
    if missing:
        raise FlameFileError(f"{where}: missing key(s) {missing}; a FLAME model needs {list(REQUIRED_KEYS)}")
    try:
        out = {k: _dense(arrays[k]) for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights")}
        out = {k: v.astype(np.float64) for k, v in out.items()}
        faces = _dense(arrays["f"])
    except (TypeError, ValueError) as e:
        raise FlameFileError(f"{where}: a FLAME array is not numeric ({e})") from e
    V = out["v_template"].shape[0] if out["v_template"].ndim == 2 else -1
    _check(where, "v_template", out["v_template"], (None, 3))
    _check(where, "shapedirs", out["shapedirs"], (V, 3, None))
    posedirs = out["posedirs"]
    if posedirs.ndim == 2 and posedirs.shape == (NUM_POSE_FEATURES, V * 3):  # smplx's flattened layout
        posedirs = posedirs.T.reshape(V, 3, NUM_POSE_FEATURES)
    out["posedirs"] = posedirs
    _check(where, "posedirs", posedirs, (V, 3, NUM_POSE_FEATURES))
    _check(where, "J_regressor", out["J_regressor"], (NUM_JOINTS, V))
    _check(where, "weights", out["weights"], (V, NUM_JOINTS))
    _check(where, "f", faces, (None, 3))
    if faces.dtype.kind not in "iu" or faces.min() < 0 or faces.max() >= V:
        raise FlameFileError(f"{where}: key 'f' must hold integer vertex ids in [0, {V})")
    if "parents" in arrays:
        parents = np.asarray(arrays["parents"]).astype(np.int64)
    else:
        kintree = np.asarray(arrays["kintree_table"]).astype(np.int64)
        _check(where, "kintree_table", kintree, (2, NUM_JOINTS))
        parents = kintree[0].copy()
        parents[0] = -1  # the root's "no parent" sentinel (max uint32 in the files)
    if tuple(parents) != FLAME_PARENTS:
        raise FlameFileError(f"{where}: kinematic parents {parents.tolist()} are not FLAME's {list(FLAME_PARENTS)}")
    for key, axis in (("J_regressor", 1), ("weights", 1)):
        if not np.allclose(out[key].sum(axis=axis), 1.0, atol=1e-4):
            raise FlameFileError(f"{where}: rows of key {key!r} must sum to 1")
    out.update(f=faces.astype(np.int64), parents=parents)
    return out


def load_flame_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The validated arrays of a FLAME `.pkl` (official) or `.npz` (converted) file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: FLAME model file not found")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            arrays: Mapping[str, Any] = dict(z)
    else:
        arrays = safe_load(path)
        if not isinstance(arrays, Mapping):
            raise FlameFileError(f"{path}: expected a pickled dict of FLAME arrays, got {type(arrays).__name__}")
    return validate_flame_arrays(arrays, str(path))


def load_embeddings(static_pkl: str | Path, dynamic_npy: str | Path) -> dict[str, np.ndarray]:
    """RingNet's landmark embeddings (also shipped by DAD-3DHeads).

    Returns lmk_faces (51,), lmk_bary (51, 3), dyn_lmk_faces (79, 17), dyn_lmk_bary (79, 17, 3).
    """
    static = safe_load(static_pkl)
    dynamic = safe_load_npy(dynamic_npy)
    out = {}
    for where, table, prefix, shape in ((static_pkl, static, "lmk", (51,)), (dynamic_npy, dynamic, "dyn_lmk", (79, 17))):
        if not isinstance(table, Mapping) or not {"lmk_face_idx", "lmk_b_coords"} <= set(table):
            raise FlameFileError(f"{where}: expected a dict with keys 'lmk_face_idx' and 'lmk_b_coords'")
        faces = np.stack([np.asarray(x) for x in table["lmk_face_idx"]]) if isinstance(table["lmk_face_idx"], list) else np.asarray(table["lmk_face_idx"])
        bary = np.stack([np.asarray(x) for x in table["lmk_b_coords"]]) if isinstance(table["lmk_b_coords"], list) else np.asarray(table["lmk_b_coords"])
        _check(str(where), "lmk_face_idx", faces, shape)
        _check(str(where), "lmk_b_coords", bary.astype(np.float64), shape + (3,))
        out[f"{prefix}_faces"], out[f"{prefix}_bary"] = faces.astype(np.int64), bary.astype(np.float64)
    return out


def load_flame(
    path: str | Path,
    n_shape: int = 300,
    n_expr: int = 100,
    *,
    static_embedding: str | Path | None = None,
    dynamic_embedding: str | Path | None = None,
    subsets: Mapping[str, np.ndarray] | None = None,
) -> FlameModel:
    """A `FlameModel` from a FLAME file with `n_shape` identity and `n_expr` expression components.

    Expression columns start at 300 in FLAME files; the landmark embeddings are optional.
    """
    a = load_flame_arrays(path)
    N = a["shapedirs"].shape[-1]
    expr_offset = FLAME_SHAPE_COMPONENTS if N > FLAME_SHAPE_COMPONENTS else n_shape
    if n_shape > min(N, FLAME_SHAPE_COMPONENTS) or expr_offset + n_expr > N:
        raise FlameFileError(
            f"{path}: key 'shapedirs' has {N} components; cannot use {n_shape} shape and {n_expr} expression components"
        )
    emb = {}
    if static_embedding is not None or dynamic_embedding is not None:
        if static_embedding is None or dynamic_embedding is None:
            raise ValueError("give both static_embedding and dynamic_embedding, or neither")
        emb = load_embeddings(static_embedding, dynamic_embedding)
        F = len(a["f"])
        for key in ("lmk_faces", "dyn_lmk_faces"):
            if emb[key].max() >= F:
                raise FlameFileError(f"embedding {key} indexes face {emb[key].max()}, but {path} has {F} faces")
    return build_flame_model(
        v_template=a["v_template"], shapedirs=a["shapedirs"], posedirs=a["posedirs"], J_regressor=a["J_regressor"],
        weights=a["weights"], faces=a["f"], lmk_faces=emb.get("lmk_faces"), lmk_bary=emb.get("lmk_bary"),
        dyn_lmk_faces=emb.get("dyn_lmk_faces"), dyn_lmk_bary=emb.get("dyn_lmk_bary"), n_shape=n_shape, n_expr=n_expr,
        expr_offset=expr_offset, subsets=dict(subsets or {}),
    )


def load_dad3dheads_static(static_dir: str | Path) -> dict[str, Any]:
    """DAD-3DHeads' `model_training/model/static`: embedding paths and the vertex subsets."""
    root = Path(static_dir)
    paths = dict(static=root / "flame_static_embedding.pkl", dynamic=root / "flame_dynamic_embedding.npy")
    paths.update({name: root / "flame_indices" / f"{name}.npy" for name in DAD_SUBSETS})
    absent = [str(p) for p in paths.values() if not p.is_file()]
    if absent:
        raise FileNotFoundError(f"{root} is not DAD-3DHeads' model/static directory; missing: {', '.join(absent)}")
    subsets = {}
    for name in DAD_SUBSETS:
        subsets[name] = np.load(paths[name], allow_pickle=False).astype(np.int64).reshape(-1)
    return dict(static_embedding=paths["static"], dynamic_embedding=paths["dynamic"], subsets=subsets)


def load_flame_for_dad3dheads(model_path: str | Path, static_dir: str | Path) -> FlameModel:
    """FLAME (300 shape, 100 expression) with DAD-3DHeads' embeddings and vertex subsets."""
    static = load_dad3dheads_static(static_dir)
    model = load_flame(
        model_path, 300, 100, static_embedding=static["static_embedding"],
        dynamic_embedding=static["dynamic_embedding"], subsets=static["subsets"],
    )
    for name, ids in static["subsets"].items():
        if ids.min() < 0 or ids.max() >= model.num_vertices:
            raise FlameFileError(f"{static_dir}: subset {name!r} has vertex ids outside [0, {model.num_vertices})")
    return model
