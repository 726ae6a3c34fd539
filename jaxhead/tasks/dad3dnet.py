"""DAD-3DNet task: the official (or paper) loss, the DAD-3DHeads benchmark metrics, the
mean-prediction baseline and pictures. Works with the synthetic FLAME-format head model
(default) or a user's FLAME file (`config.flame.model_path`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from data_pipelines.augment import dad3dnet as dad_augment
from data_pipelines import image_ops
from data_pipelines.pipelines.dad3dnet import DAD3DNetTransform, enlarged_crop
from flame_jax.dad_ground_truth import LandmarkEmbedding
from flame_jax.io import load_flame_for_dad3dheads
from flame_jax.landmarks import landmarks_68
from flame_jax.model import FlameModel
from flame_jax.synthetic import head_model
from jaxhead import visualize
from jaxhead.losses.dad3dnet import dad3dnet_loss, resolve_loss_config
from jaxhead.metrics import dad3dheads as bench
from jaxhead.models.dad3dnet_mesh import MESH_OFFSET_Z, reprojected_vertices, rotation_matrix, split_params, vertices_3d
from jaxhead.tasks import PhotoResult, register_task


def flame_config() -> ml_collections.ConfigDict:
    """`config.flame`: which FLAME-format model decodes the 3DMM parameters."""
    return ml_collections.ConfigDict(
        dict(
            model_path="",  # a user FLAME file (.pkl/.npz); empty: the synthetic head model
            static_dir="",  # DAD-3DHeads `model_training/model/static` (embeddings, vertex subsets)
            synthetic_seed=0,
        )
    )


def load_flame_model(config: ml_collections.ConfigDict) -> FlameModel:
    """The FLAME-format model of `config.flame` with 300 shape / 100 expression components."""
    cfg = config.flame
    if not cfg.model_path:
        return head_model(cfg.synthetic_seed, config.model.n_shape, config.model.n_expr)
    if not cfg.static_dir:
        raise ValueError(
            "config.flame.static_dir must point at DAD-3DHeads' model_training/model/static directory "
            "(landmark embeddings and flame_indices) when config.flame.model_path is set"
        )
    return load_flame_for_dad3dheads(cfg.model_path, cfg.static_dir)


def _f32(tree: Any) -> Any:
    return jax.tree.map(lambda x: x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def _xywh(box_ltrb: np.ndarray) -> np.ndarray:
    return np.stack([box_ltrb[..., 0], box_ltrb[..., 1], box_ltrb[..., 2] - box_ltrb[..., 0],
                     box_ltrb[..., 3] - box_ltrb[..., 1]], axis=-1)


def crop_to_image(points: np.ndarray, batch: dict[str, np.ndarray], i: int) -> np.ndarray:
    """(N, 2) pixels of the 256 crop of example i -> original-image pixels."""
    return (points - batch["crop_pad"][i]) / batch["crop_scale"][i] + batch["crop_box"][i][:2]


@register_task("dad3dnet")
class DAD3DNetTask:
    name = "dad3dnet"
    input_keys = ("image",)
    best_metric = "nme"
    best_mode = "min"
    uses_intrinsics = False

    def __init__(self, config: ml_collections.ConfigDict, flame: FlameModel | None = None):
        """`flame` defaults to the FLAME-format model of `config.flame` (`load_flame_model`)."""
        self.config = config
        self.loss_config = resolve_loss_config(config.loss)
        self.flame: FlameModel = flame if flame is not None else load_flame_model(config)
        self.embedding = LandmarkEmbedding.from_flame(self.flame)
        subsets = {k: np.asarray(v) for k, v in self.flame.subsets.items()}
        # The benchmark's "head" is DAD-3DHeads' face_w_ears (3669 FLAME vertices).
        self.head_indices, self.face_indices = subsets["face_w_ears"], subsets["face"]
        self.edges = visualize.mesh_edges(self._face_triangles())
        self.size = float(config.model.img_size)
        # Mean-prediction baseline (`fit_baseline`): mean crop landmarks, rotation and model mesh.
        self.mean_landmarks = np.full((68, 2), 0.5)
        self.mean_R = np.diag([1.0, -1.0, -1.0])
        self.mean_vertices = np.asarray(self.flame.v_template, np.float64)

    def augment(self, batch: dict[str, jax.Array], key: jax.Array) -> dict[str, jax.Array]:
        """The training augmentation of a host batch, on the device (the identity when the host augments)."""
        if not self.config.data.get("device_augment"):
            return batch
        return dad_augment.augment(batch, key, dad_augment.DAD3DNetAugment.from_config(self.config.data))

    def _face_triangles(self) -> np.ndarray:
        faces = np.asarray(self.flame.faces)
        keep = np.zeros(self.flame.v_template.shape[0], bool)
        keep[np.asarray(self.flame.subsets["face"])] = True
        return faces[keep[faces].all(axis=1)]

    def transform(self) -> DAD3DNetTransform:
        return DAD3DNetTransform(self.config.data, self.embedding)

    def model_buffers(self) -> dict[str, np.ndarray]:
        return {}

    def loss(self, model: nnx.Module, batch: dict[str, jax.Array]) -> tuple[jax.Array, dict[str, jax.Array]]:
        out = _f32(model(batch["image"]))
        return dad3dnet_loss(self.loss_config, self.flame, out, batch)

    def predict(self, model: nnx.Module, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        out = _f32(model(batch["image"]))
        params = out["params_3dmm"]
        vertices_2d = reprojected_vertices(self.flame, params, self.size)
        # Without the landmark head (Table 7 rows 1-4) the 68 landmarks are the reprojected mesh's.
        if self.loss_config.landmark_head:
            landmarks = out["landmarks"] * self.size
        else:
            landmarks = landmarks_68(self.flame, vertices_2d, contour="frontal")
        return dict(
            params=params,
            landmarks=landmarks,
            vertices_2d=vertices_2d,
            vertices_3d=vertices_3d(self.flame, params),
            R=rotation_matrix(params, self.config.model.n_shape, self.config.model.n_expr),
        )

    def submission(self, predictions: dict[str, np.ndarray], batch: dict[str, np.ndarray], i: int) -> dict:
        """Example i as an official submission entry (original-image pixels)."""
        lmk = crop_to_image(predictions["landmarks"][i], batch, i)
        return bench.submission_entry(lmk, predictions["vertices_3d"][i], predictions["R"][i], self.embedding)

    def evaluate(self, predictions: dict[str, np.ndarray], batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = []
        for i in range(len(batch["vertices"])):
            gt = dict(
                vertices=batch["vertices"][i], model_view_matrix=batch["model_view_matrix"][i],
                projection_matrix=batch["projection_matrix"][i], bbox=_xywh(batch["head_box"][i]),
                image_height=batch["image_hw"][i][0],
            )
            rows.append(bench.score_item(
                gt, self.submission(predictions, batch, i), embedding=self.embedding,
                head_indices=self.head_indices, face_indices=self.face_indices,
            ))
        return {k: np.array([r[k] for r in rows]) for k in rows[0]}

    def summarize(self, per_sample: dict[str, np.ndarray]) -> dict[str, float]:
        return {k: float(np.mean(v)) for k, v in per_sample.items()}

    def fit_baseline(self, batches: Iterable[dict[str, np.ndarray]]) -> None:
        """Mean landmarks (crop), chordal-mean rotation and mean model mesh of training batches."""
        lmk, Rs, verts = [], [], []
        for b in batches:
            lmk.append(np.asarray(b["landmarks"], np.float64))
            Rs.append((bench.GL_FLIP @ np.asarray(b["model_view_matrix"], np.float64))[:, :3, :3])
            verts.append(np.asarray(b["vertices"], np.float64).mean(axis=0, keepdims=True))
        if lmk:
            self.mean_landmarks = np.concatenate(lmk).mean(axis=0)
            U, _, Vt = np.linalg.svd(np.concatenate(Rs).mean(axis=0))
            self.mean_R = U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt
            self.mean_vertices = np.concatenate(verts).mean(axis=0)

    def baseline(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        B = len(batch["vertices"])
        mesh = (self.mean_vertices + [0.0, 0.0, MESH_OFFSET_Z]) @ self.mean_R.T
        return dict(
            landmarks=np.broadcast_to(self.mean_landmarks * self.size, (B, 68, 2)),
            vertices_3d=np.broadcast_to(mesh, (B,) + mesh.shape),
            R=np.broadcast_to(self.mean_R, (B, 3, 3)),
        )

    def draw(self, batch: dict[str, np.ndarray], predictions: dict[str, np.ndarray], path: Path) -> None:
        """Crops with the reprojected face mesh, the 68 landmarks and the pose axes."""
        n = len(batch["image"])
        fig, axes = visualize.image_grid(n)
        for i in range(n):
            ax = axes[i]
            visualize.show_image(ax, visualize.denormalize(batch["image"][i]))
            v2 = predictions["vertices_2d"][i]
            visualize.draw_wireframe(ax, v2, self.edges)
            visualize.draw_landmarks(ax, predictions["landmarks"][i], size=3.0)
            centre = v2.mean(axis=0)
            for k, colour in enumerate(visualize.AXIS_COLOURS):
                end = centre + 0.25 * self.size * predictions["R"][i][:2, k]
                ax.plot(*zip(centre, end), color=colour, linewidth=2.0)
            err = bench.pose_error(predictions["R"][i], bench.gt_rotation(batch["model_view_matrix"][i]))
            ax.set_title(f"pose err {err:.3f}", fontsize=7)
        visualize.save_figure(fig, path)

    def draw_example(self, ax: Any, batch: dict[str, np.ndarray], i: int) -> None:
        size = batch["image"].shape[1]
        visualize.show_image(ax, visualize.denormalize(batch["image"][i]), str(batch["id"][i]))
        heat = batch["heatmap"][i].max(-1)
        ax.imshow(heat, extent=(0, size, size, 0), cmap="magma", alpha=0.35 * (heat > 0.05))
        visualize.draw_wireframe(ax, batch["vertices_2d"][i], self.edges[::2], alpha=0.2)
        present = batch["presence"][i] > 0
        visualize.draw_landmarks(ax, batch["landmarks"][i][present] * size, size=3)
        # Pose axes: DAD's rotation maps model axes into the crop (x right, y down).
        R = bench.gt_rotation(batch["model_view_matrix"][i])
        origin = batch["vertices_2d"][i].mean(0)
        for k, colour in enumerate(visualize.AXIS_COLOURS):
            end = origin + 0.25 * size * R[:2, k] / max(np.linalg.norm(R[:, k]), 1e-9)
            ax.plot(*zip(origin, end), color=colour, linewidth=1.2)

    def photo_inputs(self, image: np.ndarray, box: np.ndarray, K: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
        """DAD-3DNet crops the box enlarged by the middle of the training range (K is not used)."""
        lo, hi = self.config.data.enlarge
        canvas, (x0, y0, _, _), scale, pad = enlarged_crop(image, box, np.full(4, (lo + hi) / 2.0), int(self.size))
        return {"image": image_ops.normalize(canvas)[None]}, dict(origin=np.array([x0, y0]), scale=scale, pad=pad)

    def photo_outputs(self, predictions: dict[str, np.ndarray], context: dict) -> PhotoResult:
        to_image = lambda p: (np.asarray(p, np.float64) - context["pad"]) / context["scale"] + context["origin"]  # noqa: E731
        params = np.asarray(predictions["params"][0])
        parts = split_params(params, self.config.model.n_shape, self.config.model.n_expr)
        landmarks, verts2d = to_image(predictions["landmarks"][0]), to_image(predictions["vertices_2d"][0])
        R = np.asarray(predictions["R"][0], np.float64)
        values = dict(
            landmarks_68=landmarks.tolist(), projected_vertices=verts2d.tolist(),
            flame_params={k: np.asarray(v).tolist() for k, v in parts.items()}, R=R.tolist(),
            crop_box=[float(context["origin"][0]), float(context["origin"][1]), float(context["scale"])],
        )
        vertices = np.asarray(predictions["vertices_3d"][0], np.float64)
        return PhotoResult(values, vertices, dict(points=verts2d, R=R, landmarks=landmarks))

    def mesh_faces(self) -> np.ndarray:
        return np.asarray(self.flame.faces)

    def draw_photo(self, ax: Any, result: PhotoResult) -> None:
        d = result.drawing
        visualize.draw_wireframe(ax, d["points"], self.edges, alpha=0.4)
        visualize.draw_landmarks(ax, d["landmarks"], size=6)
        centre, length = d["points"].mean(0), 0.25 * np.ptp(d["points"][:, 1])
        for k, colour in enumerate(visualize.AXIS_COLOURS):
            ax.plot(*zip(centre, centre + length * d["R"][:2, k]), color=colour, linewidth=2.5)
