"""The official TRG training loss (train.py and models/trg_loss.py of TRG-Release), pure JAX.

For the regressor outputs t = 1..T (output[0], the initial state, is not supervised), with
iteration weights w_t = decay^(T - t) (0.25, 0.5, 1 for T = 3):

  total = sum_t w_t (world + cam + rot + img + lmk5 + [t = T] edge) + lmk68

  world  20   mean over [B', V, 3] of |V_pred - V_gt| (head frame), B' = rows with has_3d_vtx = 1
  cam    2    the same on camera-frame vertices
  img    0.01 mean over [B, V, 2] of conf |pi_K(V_cam) - v_gt|, full-image K and pixels,
              conf = vtx_img[..., 2]
  rot    10   mean over [B'', 3, 3] of (R_pred - R_gt)^2, B'' = rows with has_rot = 1 (the
              official code compares transposed matrices; the mean is the same)
  edge   2    sum over the 3 triangle edge slots of the mean over [B', F] of
              | |V_a - V_b| - |V*_a - V*_b| | (world vertices), last iteration only
  lmk5   0.1  mean over [B, 5, 2] of conf |p - g|: the 68 projected landmarks (kpt_ind) at
              iBUG indices (39, 42, 33, 48, 54), moved into normalised crop coordinates
  lmk68  1.25 mean over [B, 68, 2] of conf |soft-argmax - g| (once), g = lmk68_crop

Conf-weighted means divide by the full element count (conf multiplies, it does not
renormalise). Has-masked terms average the selected rows only and are 0 when no row is
selected. One deviation: the official edge term has no such guard (it would be NaN for a
batch without 3D labels); here it is 0 like the other masked terms.

The 3D vertex labels carry no confidence column here: the official 4th column is 1 for every
dataset that has 3D vertices, and rows without them are excluded by has_3d_vtx.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from flame_jax.projection import project_pinhole


def loss_config() -> ml_collections.ConfigDict:
    """`config.loss` for TRG: the weights of the official training script (run_train.sh)."""
    return ml_collections.ConfigDict(
        dict(
            world=20.0,
            cam=2.0,
            img=0.01,
            rot=10.0,
            edge=2.0,
            lmk5=0.1,
            lmk68=1.25,
            iteration_decay=0.5,  # loop_loss_weight: w_t = decay^(T - t)
            lmk5_indices=(39, 42, 33, 48, 54),  # inner eye corners, nose base, mouth corners
        )
    )


def _row_mask(has: jax.Array) -> jax.Array:
    return (has.reshape(has.shape[0]) == 1).astype(jnp.float32)


def masked_mean(per_row: jax.Array, has: jax.Array) -> jax.Array:
    """Mean over the rows with has = 1 of (B, ...) values; 0 when there is none."""
    mask = _row_mask(has)
    per_row = per_row.reshape(per_row.shape[0], -1)
    total = jnp.sum(mask[:, None] * per_row)
    count = jnp.sum(mask) * per_row.shape[1]
    return jnp.where(count > 0, total / jnp.maximum(count, 1.0), 0.0)


def vertex_l1(pred: jax.Array, gt: jax.Array, has: jax.Array) -> jax.Array:
    """(B, V, 3) x2, (B,) -> mean |pred - gt| over the rows with has = 1."""
    return masked_mean(jnp.abs(pred - gt), has)


def confident_l1(pred: jax.Array, gt_conf: jax.Array) -> jax.Array:
    """(B, N, 2) predictions, (B, N, 3) [x, y, conf] -> mean over [B, N, 2] of conf |pred - gt|."""
    return jnp.mean(gt_conf[..., 2:3] * jnp.abs(pred - gt_conf[..., :2]))


def rotation_mse(R_pred: jax.Array, R_gt: jax.Array, has: jax.Array) -> jax.Array:
    """(B, 3, 3) x2, (B,) -> mean squared entry difference over the rows with has = 1."""
    return masked_mean(jnp.square(R_pred - R_gt), has)


def edge_length_l1(pred: jax.Array, gt: jax.Array, triangles: jax.Array, has: jax.Array) -> jax.Array:
    """(B, V, 3) x2, (F, 3) triangles, (B,) -> sum over the 3 edge slots of the mean edge-length error."""
    total = 0.0
    for k in range(3):
        a, b = triangles[:, k], triangles[:, (k + 1) % 3]
        len_pred = jnp.linalg.norm(pred[:, a] - pred[:, b], axis=-1)
        len_gt = jnp.linalg.norm(gt[:, a] - gt[:, b], axis=-1)
        total = total + masked_mean(jnp.abs(len_pred - len_gt), has)
    return total


def full_to_crop_normalised(pixels: jax.Array, bbox_info: jax.Array, crop_size: int) -> jax.Array:
    """(B, N, 2) full-image pixels -> normalised crop coordinates ((u - l) crop / b) / crop * 2 - 1."""
    scale = (crop_size / (bbox_info[:, 2] - bbox_info[:, 0]))[:, None, None]
    crop = (pixels - bbox_info[:, None, 0:2]) * scale
    return crop / crop_size * 2.0 - 1.0


def iteration_weights(num_iterations: int, decay: float) -> list[float]:
    """w_t = decay^(T - t) for t = 1..T."""
    return [decay ** (num_iterations - t) for t in range(1, num_iterations + 1)]


def trg_loss(
    output: dict,
    batch: dict[str, jax.Array],
    cfg: ml_collections.ConfigDict,
    *,
    kpt_ind: jax.Array,
    triangles: jax.Array,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The official total loss.

    Args:
      output: the TRG output dict (`output` list incl. the initial state, `pred_lmk68`).
      batch: img (B, H, W, 3), K (B, 3, 3) full image, bbox_info (B, 7), R (B, 3, 3),
        vtx_world (B, V, 3), vtx_cam (B, V, 3), vtx_img (B, V, 3) [u, v, conf] full pixels,
        lmk68_crop (B, 68, 3) [x, y, conf] normalised crop, has_3d_vtx (B,), has_rot (B,).
      cfg: `loss_config()`.
      kpt_ind: (68,) landmark vertex ids into the V vertices.
      triangles: (F, 3) mesh triangles.

    Returns:
      (total, terms): terms are world, cam, img, rot, edge, lmk5 (each summed over the
      iterations with their weights and the term's weight) and lmk68; total is their sum.
    """
    crop_size = batch["img"].shape[1]
    used = ("K", "bbox_info", "R", "vtx_world", "vtx_cam", "vtx_img", "lmk68_crop", "has_3d_vtx", "has_rot")
    batch = {k: jnp.asarray(batch[k]) for k in used}
    has_3d, has_rot = batch["has_3d_vtx"], batch["has_rot"]
    idx5 = np.asarray(cfg.lmk5_indices)
    lmk5 = jnp.asarray(kpt_ind)[idx5]
    gt_lmk5 = batch["lmk68_crop"][:, idx5]
    iterations = output["output"][1:]
    weights = iteration_weights(len(iterations), cfg.iteration_decay)
    terms = {name: jnp.zeros((), jnp.float32) for name in ("world", "cam", "img", "rot", "edge", "lmk5")}
    for t, (pred, w) in enumerate(zip(iterations, weights, strict=True), start=1):
        pixels = project_pinhole(pred["pred_face_cam"], batch["K"])
        terms["world"] += w * cfg.world * vertex_l1(pred["pred_face_world"], batch["vtx_world"], has_3d)
        terms["cam"] += w * cfg.cam * vertex_l1(pred["pred_face_cam"], batch["vtx_cam"], has_3d)
        terms["img"] += w * cfg.img * confident_l1(pixels, batch["vtx_img"])
        terms["rot"] += w * cfg.rot * rotation_mse(pred["R"], batch["R"], has_rot)
        crop5 = full_to_crop_normalised(pixels[:, lmk5], batch["bbox_info"], crop_size)
        terms["lmk5"] += w * cfg.lmk5 * confident_l1(crop5, gt_lmk5)
        if t == len(iterations):
            edge = edge_length_l1(pred["pred_face_world"], batch["vtx_world"], jnp.asarray(triangles), has_3d)
            terms["edge"] += w * cfg.edge * edge
    if "pred_lmk68" in output:
        terms["lmk68"] = cfg.lmk68 * confident_l1(output["pred_lmk68"], batch["lmk68_crop"])
    total = sum(terms.values())
    return total, terms
