"""TRG task: the official loss, the paper's 6DoF metrics, the mean-pose baseline and pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from data_pipelines.augment import trg as trg_augment
from flame_jax.projection import correction_from_translation, translation_from_correction
from jaxhead import visualize
from jaxhead.losses.trg import trg_loss
from jaxhead.metrics.pose6dof import aggregate, per_sample_metrics


def _f32(tree: Any) -> Any:
    return jax.tree.map(lambda x: x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def _project_to_rotation(M: np.ndarray) -> np.ndarray:
    """Nearest rotation to a 3x3 matrix (the chordal mean of rotations)."""
    U, _, Vt = np.linalg.svd(M)
    return U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt


class TRGTask:
    name = "trg"
    input_keys = ("img",)
    best_metric = "ADD"
    best_mode = "min"

    def __init__(self, config: ml_collections.ConfigDict, *, data_info: Any):
        self.config = config
        self.topology = data_info.topology
        self.kpt_ind = jnp.asarray(self.topology.kpt_ind, jnp.int32)
        self.triangles = jnp.asarray(self.topology.triangles, jnp.int32)
        self.edges = visualize.mesh_edges(np.asarray(self.topology.triangles))
        # The baseline's constant pose: the training set's mean rotation and mean Eq. 2
        # correction parameters (`fit_baseline`); until fitted, the model's initial pose.
        self.baseline_R = np.eye(3)
        self.baseline_correction = np.asarray(self.topology.init_pose[6:9], np.float64)

    def augment(self, batch: dict[str, jax.Array], key: jax.Array) -> dict[str, jax.Array]:
        """The training augmentation of a host batch, on the device (the identity when the host augments)."""
        if not self.config.data.get("device_augment"):
            return batch
        # Built when the step is traced, so evaluation never needs the training-only flip map.
        return trg_augment.augment(batch, key, trg_augment.TRGAugment.from_config(self.config.data, self.topology))

    def model_buffers(self) -> dict[str, np.ndarray]:
        t = self.topology
        return dict(init_face=t.init_face, init_pose=t.init_pose, subsample=t.subsample)

    def loss(self, model: nnx.Module, batch: dict[str, jax.Array]) -> tuple[jax.Array, dict[str, jax.Array]]:
        out = _f32(model(batch["img"], batch["K_crop"], batch["bbox_info"]))
        return trg_loss(out, batch, self.config.loss, kpt_ind=self.kpt_ind, triangles=self.triangles)

    def predict(self, model: nnx.Module, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        out = _f32(model(batch["img"], batch["K_crop"], batch["bbox_info"]))
        last = out["output"][-1]
        preds = dict(R=last["R"], t=last["t"], face_world=last["pred_face_world"], face_cam=last["pred_face_cam"])
        if "pred_lmk68" in out:
            preds["lmk68"] = out["pred_lmk68"]
        return preds

    def evaluate(self, predictions: dict[str, np.ndarray], batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        has_3d = np.asarray(batch["has_3d_vtx"]) > 0
        m = per_sample_metrics(
            predictions["R"], predictions["t"], batch["R"], batch["t"], batch["eval_vertices"],
            vertices_pred=predictions["face_world"] if has_3d.all() else None,
        )
        return m

    def summarize(self, per_sample: dict[str, np.ndarray]) -> dict[str, float]:
        return aggregate([per_sample])

    def fit_baseline(self, batches: Iterable[dict[str, np.ndarray]]) -> None:
        """Mean rotation and mean correction parameters over (unaugmented) training batches."""
        Rs, cors = [], []
        for b in batches:
            info = np.asarray(b["bbox_info"], np.float64)
            Rs.append(np.asarray(b["R"], np.float64))
            cors.append(np.asarray(correction_from_translation(b["t"], info[:, :4], info[:, 4], info[:, 5:7])))
        if Rs:
            self.baseline_R = _project_to_rotation(np.concatenate(Rs).mean(axis=0))
            self.baseline_correction = np.concatenate(cors).mean(axis=0)

    def baseline(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The mean-pose, mean-face prediction: constant R and correction, the box gives t (Eq. 2)."""
        B = len(batch["R"])
        info = np.asarray(batch["bbox_info"], np.float64)
        cor = np.broadcast_to(self.baseline_correction, (B, 3))
        t = np.asarray(translation_from_correction(cor, info[:, :4], info[:, 4], info[:, 5:7]))
        R = np.broadcast_to(self.baseline_R, (B, 3, 3))
        face = np.broadcast_to(np.asarray(self.topology.init_face, np.float64), (B,) + self.topology.init_face.shape)
        return dict(R=R, t=t, face_world=face, face_cam=np.einsum("bij,bnj->bni", R, face) + t[:, None])

    def draw(self, batch: dict[str, np.ndarray], predictions: dict[str, np.ndarray], path: Path) -> None:
        """Crops with the predicted mesh (wireframe) and pose axes; thin axes are the ground truth."""
        n = len(batch["img"])
        fig, axes = visualize.image_grid(n)
        for i in range(n):
            ax = axes[i]
            K = batch["K_crop"][i]
            visualize.show_image(ax, visualize.denormalize(batch["img"][i]))
            face = predictions["face_cam"][i]
            if np.all(face[:, 2] > 1e-3):
                visualize.draw_wireframe(ax, visualize.project(face, K), self.edges)
            visualize.draw_axes(ax, batch["R"][i], batch["t"][i], K, lw=0.8)
            visualize.draw_axes(ax, predictions["R"][i], predictions["t"][i], K, lw=2.0)
            ge = np.degrees(np.arccos(np.clip((np.trace(predictions["R"][i] @ batch["R"][i].T) - 1) / 2, -1, 1)))
            ax.set_title(f"GE {ge:.1f}°  Δt {1000 * np.linalg.norm(predictions['t'][i] - batch['t'][i]):.0f} mm", fontsize=7)
        visualize.save_figure(fig, path)
