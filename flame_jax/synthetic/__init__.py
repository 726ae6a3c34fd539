"""The embedded synthetic FLAME-format head model.

The real FLAME model is licence-gated, so defaults, tests and CI use this procedural
stand-in: a closed head mesh (~4.8k vertices) with a face, eyeballs, ears and a neck
stub, FLAME-format bases (300 identity, 100 expression, pose correctives), a 5-joint
FLAME skeleton, the 68 iBUG landmarks (static + yaw-dependent contour), DAD-3DHeads-style
vertex subsets and a TRG-shaped 1220-vertex face region.

    model = head_model(seed=0)            # a FlameModel: lbs, landmarks_68, ... work on it
    assets = head_assets(seed=0)          # + albedo, regions, mirror maps, TRG face region

Generation takes a few seconds; the arrays are cached under $JAXHEAD_CACHE
(default ~/.cache/jaxhead), keyed by seed and generator version.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from flame_jax.lbs import lbs
from flame_jax.model import FlameModel, build_flame_model
from flame_jax.synthetic import appearance, bases, geometry, labels, rig
from flame_jax.synthetic.appearance import REGION_NAMES

GENERATOR_VERSION = 1
NUM_SHAPE, NUM_EXPR = 300, 100
# Head frame (TRG) = model frame turned by F = diag(1, -1, -1).
FLIP_YZ = np.diag([1.0, -1.0, -1.0])

__all__ = ["REGION_NAMES", "SyntheticHead", "flipped_triangles", "head_assets", "head_model"]


@dataclasses.dataclass(frozen=True)
class SyntheticHead:
    """The synthetic head model and everything needed to render and train on it.

    Attributes:
      model: the FlameModel (300 identity, 100 expression components).
      albedo: (V, 3) float32 RGB in [0, 1]; region: (V,) int ids into REGION_NAMES.
      vertex_flip: (V,) the left/right mirror permutation of the mesh (x -> -x).
      face_region: (1220,) vertex ids of the TRG-shaped face region.
      face_triangles: (T, 3) triangles of the region, ids into 0..1219, outward.
      kpt_ind: (68,) iBUG landmark ids into the 1220 (nearest to the neutral landmarks).
      subsample: (305,) sorted ids into the 1220 (farthest-point sampling).
      flip_index: (1220,) the mirror permutation within the region.
      mean_face_head: (1220, 3) float32 template region in the head frame (F v).
    """

    model: FlameModel
    albedo: np.ndarray
    region: np.ndarray
    vertex_flip: np.ndarray
    face_region: np.ndarray
    face_triangles: np.ndarray
    kpt_ind: np.ndarray
    subsample: np.ndarray
    flip_index: np.ndarray
    mean_face_head: np.ndarray


def _generate(seed: int) -> dict[str, np.ndarray]:
    mesh = geometry.build_mesh()
    rng = np.random.default_rng(seed)
    flip = geometry.mirror_permutation(mesh.vertices)
    lmk_faces, lmk_bary = labels.static_embedding(mesh)
    dyn_faces, dyn_bary = labels.dynamic_embedding(mesh)
    region = labels.face_region(mesh, flip)
    in_region = np.full(len(mesh.vertices), -1)
    in_region[region] = np.arange(len(region))
    tri = mesh.faces[np.all(in_region[mesh.faces] >= 0, axis=1)]
    face_triangles = in_region[tri]
    static = np.einsum("lk,lkc->lc", lmk_bary, mesh.vertices[mesh.faces[lmk_faces]])
    contour = np.einsum("lk,lkc->lc", dyn_bary[0], mesh.vertices[mesh.faces[dyn_faces[0]]])
    lmk68 = np.concatenate([contour, static])
    region_v = mesh.vertices[region]
    kpt_ind = np.argmin(np.linalg.norm(region_v[None] - lmk68[:, None], axis=-1), axis=1)
    nose = int(np.argmax(region_v[:, 2]))
    subsample = np.sort(labels.farthest_point_sampling(region_v, labels.NUM_SUBSAMPLE, nose))
    out = dict(
        v_template=mesh.vertices,
        faces=mesh.faces,
        part=mesh.part,
        shapedirs=np.concatenate(
            [bases.identity_basis(mesh, NUM_SHAPE, rng), bases.expression_basis(mesh, NUM_EXPR, rng)], axis=2
        ),
        posedirs=rig.pose_correctives(mesh),
        J_regressor=rig.joint_regressor(mesh),
        weights=rig.lbs_weights(mesh),
        lmk_faces=lmk_faces,
        lmk_bary=lmk_bary,
        dyn_lmk_faces=dyn_faces,
        dyn_lmk_bary=dyn_bary,
        region=appearance.regions(mesh),
        vertex_flip=flip,
        face_region=region,
        face_triangles=face_triangles,
        kpt_ind=kpt_ind,
        subsample=subsample,
        flip_index=in_region[flip[region]],
    )
    out.update({f"subset_{k}": v for k, v in labels.subsets(mesh).items()})
    return out


def _cache_path(seed: int) -> Path:
    root = Path(os.environ.get("JAXHEAD_CACHE", Path.home() / ".cache" / "jaxhead"))
    return root / f"synthetic_head_v{GENERATOR_VERSION}_seed{seed}.npz"


def _arrays(seed: int) -> dict[str, np.ndarray]:
    path = _cache_path(seed)
    if path.exists():
        with np.load(path) as z:
            return dict(z)
    arrays = _generate(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)
    return arrays


def _model(a: dict[str, np.ndarray], n_shape: int, n_expr: int) -> FlameModel:
    if not (0 <= n_shape <= NUM_SHAPE and 0 <= n_expr <= NUM_EXPR):
        raise ValueError(f"n_shape must be in [0, {NUM_SHAPE}] and n_expr in [0, {NUM_EXPR}]")
    subsets = {k[len("subset_"):]: v for k, v in a.items() if k.startswith("subset_")}
    subsets["face_region"] = a["face_region"]
    return build_flame_model(
        v_template=a["v_template"], shapedirs=a["shapedirs"], posedirs=a["posedirs"],
        J_regressor=a["J_regressor"], weights=a["weights"], faces=a["faces"],
        lmk_faces=a["lmk_faces"], lmk_bary=a["lmk_bary"],
        dyn_lmk_faces=a["dyn_lmk_faces"], dyn_lmk_bary=a["dyn_lmk_bary"],
        n_shape=n_shape, n_expr=n_expr, expr_offset=NUM_SHAPE, subsets=subsets,
    )


def head_model(seed: int = 0, n_shape: int = NUM_SHAPE, n_expr: int = NUM_EXPR) -> FlameModel:
    """The synthetic FLAME-format head model with `n_shape` identity and `n_expr` expression components."""
    return _model(_arrays(seed), n_shape, n_expr)


def head_assets(seed: int = 0) -> SyntheticHead:
    """The synthetic head model with its appearance, mirror maps and TRG face region."""
    a = _arrays(seed)
    region = a["face_region"]
    return SyntheticHead(
        model=_model(a, NUM_SHAPE, NUM_EXPR),
        albedo=appearance.albedo(a["region"]),
        region=a["region"],
        vertex_flip=a["vertex_flip"],
        face_region=region,
        face_triangles=a["face_triangles"],
        kpt_ind=a["kpt_ind"],
        subsample=a["subsample"],
        flip_index=a["flip_index"],
        mean_face_head=(a["v_template"][region] @ FLIP_YZ.T).astype(np.float32),
    )


def flipped_triangles(model: FlameModel, betas: jax.Array, full_pose: jax.Array) -> jax.Array:
    """Number of triangles whose normal turns against the template's (an inverted or folded mesh).

    Global and eye rotations turn normals legitimately: use this with those set to zero.
    betas (S+E,), full_pose (15,) -> () int.
    """
    v, _ = lbs(model, betas, full_pose)
    t = model.v_template
    f = model.faces

    def normals(x: jax.Array) -> jax.Array:
        return jnp.cross(x[f[:, 1]] - x[f[:, 0]], x[f[:, 2]] - x[f[:, 0]])

    return jnp.sum(jnp.sum(normals(v) * normals(t), axis=-1) <= 0.0)
