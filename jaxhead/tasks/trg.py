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
from data_pipelines.pipelines.trg import TRGTransform, crop_inputs, square_box
from data_pipelines.topology import FaceTopology, load_topology
from flame_jax.projection import correction_from_translation, translation_from_correction
from flame_jax.rotations import matrix_to_euler_yxz
from jaxhead import visualize
from jaxhead.losses.trg import trg_loss
from jaxhead.metrics.pose6dof import aggregate, per_sample_metrics
from jaxhead.models.trg import initial_pose
from jaxhead.tasks import PhotoResult, register_task


def _at_least_f32(tree: Any) -> Any:
    """Lifts bf16 outputs to f32 for the loss; f64 (an x64 run) stays f64."""
    return jax.tree.map(
        lambda x: x.astype(jnp.promote_types(x.dtype, jnp.float32)) if jnp.issubdtype(x.dtype, jnp.floating) else x,
        tree,
    )


def _project_to_rotation(M: np.ndarray) -> np.ndarray:
    """Nearest rotation to a 3x3 matrix (the chordal mean of rotations)."""
    U, _, Vt = np.linalg.svd(M)
    return U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt


@register_task("trg")
class TRGTask:
    name = "trg"
    input_keys = ("img",)
    best_metric = "ADD"
    best_mode = "min"
    uses_intrinsics = True

    def __init__(self, config: ml_collections.ConfigDict, topology: FaceTopology | None = None):
        """`topology` defaults to the one of `config.data` (synthetic, or ARKit from a TRG-Release checkout)."""
        self.config = config
        self.topology = topology if topology is not None else load_topology(config.data)
        self.init_pose = initial_pose(self.topology.init_rotation, config.model, self.topology.init_translation)
        self.kpt_ind = jnp.asarray(self.topology.kpt_ind, jnp.int32)
        self.triangles = jnp.asarray(self.topology.triangles, jnp.int32)
        self.edges = visualize.mesh_edges(np.asarray(self.topology.triangles))
        # The baseline's constant pose: the training set's mean rotation and mean Eq. 2
        # correction parameters (`fit_baseline`); until fitted, the model's initial pose.
        self.baseline_R = np.eye(3)
        self.baseline_correction = np.asarray(self.init_pose[6:9], np.float64)

    def transform(self) -> TRGTransform:
        return TRGTransform(self.config.data, self.topology)

    def augment(self, batch: dict[str, jax.Array], key: jax.Array) -> dict[str, jax.Array]:
        """The training augmentation of a host batch, on the device (the identity when the host augments)."""
        if not self.config.data.get("device_augment"):
            return batch
        # Built when the step is traced, so evaluation never needs the training-only flip map.
        return trg_augment.augment(batch, key, trg_augment.TRGAugment.from_config(self.config.data, self.topology))

    def model_buffers(self) -> dict[str, np.ndarray]:
        t = self.topology
        return dict(init_face=t.init_face, init_pose=self.init_pose, subsample=t.subsample)

    def loss(self, model: nnx.Module, batch: dict[str, jax.Array]) -> tuple[jax.Array, dict[str, jax.Array]]:
        out = _at_least_f32(model(batch["img"], batch["K_crop"], batch["bbox_info"]))
        return trg_loss(out, batch, self.config.loss, kpt_ind=self.kpt_ind, triangles=self.triangles)

    def predict(self, model: nnx.Module, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        out = _at_least_f32(model(batch["img"], batch["K_crop"], batch["bbox_info"]))
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

    def draw_example(self, ax: Any, batch: dict[str, np.ndarray], i: int) -> None:
        size = batch["img"].shape[1]
        visualize.show_image(ax, visualize.denormalize(batch["img"][i]), str(batch["id"][i]))
        K = batch["K_crop"][i]
        if batch["has_3d_vtx"][i] > 0:
            visualize.draw_wireframe(ax, visualize.project(batch["vtx_cam"][i], K), self.edges)
        if batch["has_rot"][i] > 0:
            visualize.draw_axes(ax, batch["R"][i], batch["t"][i], K, lw=1.2)
        lmk = batch["lmk68_crop"][i]
        visualize.draw_landmarks(ax, (lmk[lmk[:, 2] > 0, :2] + 1.0) / 2.0 * size, size=3)

    def photo_inputs(self, image: np.ndarray, box: np.ndarray, K: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
        """TRG squares the box about its centre and crops it with its K_crop and bbox_info."""
        inputs = crop_inputs(image, square_box(box), K, int(self.config.model.img_size))
        return {k: v[None] for k, v in inputs.items()}, dict(box=square_box(box), K=K)

    def photo_outputs(self, predictions: dict[str, np.ndarray], context: dict) -> PhotoResult:
        R, t, face = (np.asarray(predictions[k][0], np.float64) for k in ("R", "t", "face_cam"))
        yaw, pitch, roll = (float(a) for a in np.asarray(matrix_to_euler_yxz(R)))
        K = context["K"]
        values = dict(
            R=R.tolist(), t=t.tolist(), yaw=yaw, pitch=pitch, roll=roll,
            box=context["box"].tolist(), K=K.tolist(), vertices_cam=face.tolist(),
        )
        return PhotoResult(values, face, dict(points=visualize.project(face, K), R=R, t=t, K=K))

    def mesh_faces(self) -> np.ndarray:
        return np.asarray(self.topology.triangles)

    def draw_photo(self, ax: Any, result: PhotoResult) -> None:
        d = result.drawing
        visualize.draw_wireframe(ax, d["points"], self.edges, alpha=0.5)
        visualize.draw_axes(ax, d["R"], d["t"], d["K"], lw=2.5)
