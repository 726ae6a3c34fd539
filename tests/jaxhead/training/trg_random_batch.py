"""A small TRG config, task and random (but geometrically consistent) batch for train-step tests."""

from __future__ import annotations

import types

import ml_collections
import numpy as np

from jaxhead.losses.trg import loss_config
from jaxhead.models.trg import model_config
from jaxhead.tasks.trg import TRGTask


def trg_setup(B: int) -> tuple[ml_collections.ConfigDict, TRGTask, dict[str, np.ndarray]]:
    """(config, task, batch): 64 px crops, width 1/8, a random topology; batch arrays are f32."""
    config = ml_collections.ConfigDict(
        dict(model=model_config(), loss=loss_config(), data=dict(device_augment=False))  # batches come augmented
    )
    config.model.update(img_size=64, width_multiplier=0.125, regressor_hidden=64)
    S, V = config.model.img_size, config.model.num_vertices
    rng = np.random.default_rng(0)
    topology = types.SimpleNamespace(
        kpt_ind=rng.choice(V, 68, replace=False),
        triangles=rng.integers(0, V, (200, 3)),
        init_face=rng.normal(0, 0.05, (V, 3)).astype(np.float32),
        init_rotation=np.eye(3, dtype=np.float32),
        init_translation=np.array([0.0, 0.0, 0.5], np.float32),
        subsample=np.sort(rng.choice(V, config.model.num_sampled, replace=False)),
    )
    task = TRGTask(config, topology=topology)
    K = np.array([[500.0, 0, 400], [0, 500, 400], [0, 0, 1]], np.float32)
    box = np.array([250, 230, 550, 530], np.float32)
    K_crop = np.array([[500 * S / 300, 0, (400 - 250) * S / 300], [0, 500 * S / 300, (400 - 230) * S / 300], [0, 0, 1]])
    R = np.stack([np.linalg.qr(rng.normal(size=(3, 3)))[0] for _ in range(B)])
    R *= np.linalg.det(R)[:, None, None]
    face = rng.normal(0, 0.05, (B, V, 3))
    t = np.array([0.0, 0.0, 0.5]) + rng.normal(0, 0.02, (B, 3))
    cam = np.einsum("bij,bnj->bni", R, face) + t[:, None]
    uv = np.einsum("ij,bnj->bni", K, cam)
    batch = dict(
        img=rng.normal(size=(B, S, S, 3)),
        K=np.broadcast_to(K, (B, 3, 3)),
        K_crop=np.broadcast_to(K_crop, (B, 3, 3)),
        bbox_info=np.broadcast_to(np.r_[box, 500, 800, 800], (B, 7)),
        R=R,
        t=t,
        vtx_world=face,
        vtx_cam=cam,
        vtx_img=np.concatenate([uv[..., :2] / uv[..., 2:], np.ones((B, V, 1))], -1),
        lmk68_crop=np.concatenate([rng.uniform(-1, 1, (B, 68, 2)), np.ones((B, 68, 1))], -1),
        has_3d_vtx=np.ones(B),
        has_rot=np.ones(B),
    )
    return config, task, {k: np.ascontiguousarray(v, np.float32) for k, v in batch.items()}
