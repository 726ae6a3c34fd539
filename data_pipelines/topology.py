"""The face mesh TRG regresses: its triangles, landmark and subsample ids, mirror map and initial state.

The model's initial pose vector is built from `init_rotation`/`init_translation` by the model
(`jaxhead.models.trg.initial_pose`), which knows its variant.

Two topologies share one form (docs/conventions.md, "Face region"):
- "synthetic": the embedded head model's 1220-vertex face region (the default);
- "arkit": Apple's ARKit face mesh from the user's TRG-Release checkout (`config.data.trg_assets_dir`)
  and ARKitFace's `flip_index.npy` (`config.data.flip_index_path`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import ml_collections
import numpy as np

from data_pipelines.trg_release import load_arkit_topology, load_official_init
from flame_jax.synthetic import head_assets

# The initial translation on the synthetic data (metres, the middle of its 0.3 to 1.2 m range);
# only the "t_prediction" variant starts from it, the Eq. 2 variants from s = 1, t~ = 0.
SYNTHETIC_INIT_TRANSLATION = np.array([0.0, 0.0, 0.75], np.float32)


@dataclasses.dataclass(frozen=True)
class FaceTopology:
    """triangles (T, 3), kpt_ind (68,), subsample (305,) and flip_index (1220,) index the 1220 vertices
    (flip_index is None when no mirror map was given: evaluation and prediction need none);
    init_face (1220, 3) head frame, metres; init_rotation (3, 3) and init_translation (3,) metres,
    the initial head pose."""

    name: str
    triangles: np.ndarray
    kpt_ind: np.ndarray
    subsample: np.ndarray
    flip_index: np.ndarray | None
    init_face: np.ndarray
    init_rotation: np.ndarray
    init_translation: np.ndarray


def load_topology(data: ml_collections.ConfigDict) -> FaceTopology:
    """The topology named by `data.topology` (`data.trg_assets_dir`, `data.flip_index_path` for ARKit)."""
    if data.topology == "synthetic":
        head = head_assets(data.synthetic_seed)
        return FaceTopology(
            name="synthetic",
            triangles=np.asarray(head.face_triangles, np.int32),
            kpt_ind=np.asarray(head.kpt_ind, np.int32),
            subsample=np.asarray(head.subsample, np.int32),
            flip_index=np.asarray(head.flip_index, np.int32),
            init_face=np.asarray(head.mean_face_head, np.float32),
            init_rotation=np.eye(3, dtype=np.float32),
            init_translation=SYNTHETIC_INIT_TRANSLATION,
        )
    if data.topology == "arkit":
        if not data.trg_assets_dir:
            raise ValueError("config.data.trg_assets_dir must point at a TRG-Release checkout for the ARKit topology")
        topo = load_arkit_topology(data.trg_assets_dir)
        init = load_official_init(data.trg_assets_dir)
        return FaceTopology(
            name="arkit",
            triangles=topo["triangles"].astype(np.int32),
            kpt_ind=topo["kpt_ind"].astype(np.int32),
            subsample=topo["subsample"].astype(np.int32),
            flip_index=load_flip_index(data.flip_index_path),
            init_face=init["init_face"],
            init_rotation=init["init_rotation"],
            init_translation=init["init_translation"],
        )
    raise ValueError(f"config.data.topology must be 'synthetic' or 'arkit', got {data.topology!r}")


def load_flip_index(path: str) -> np.ndarray | None:
    """ARKitFace's `flip_index.npy`: a (1220,) left/right permutation (an involution); None for no path."""
    if not path:
        return None
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: flip_index.npy not found")
    flip = np.load(path, allow_pickle=False).astype(np.int64).reshape(-1)
    if flip.shape != (1220,) or not np.array_equal(np.sort(flip), np.arange(1220)) or not np.array_equal(flip[flip], np.arange(1220)):
        raise ValueError(f"{path}: expected a (1220,) permutation that is its own inverse")
    return flip.astype(np.int32)
