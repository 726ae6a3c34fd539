"""TRG's per-example preprocessing (spec trg.md §8-9), numpy only.

Box: square, centred on the 68 landmarks' bounding box, side `box_scale` x their largest extent,
with `int()` truncation as in the official code. Training adds, for examples with 3D labels, a
horizontal flip (vertices permuted by the topology's `flip_index`, R <- S R S, t <- S t, cx <- W - cx),
centre and scale jitter, an in-plane rotation about the projected head origin (R <- Rz(phi) R, t kept,
K_crop from the axis-aligned box, as the official code), and colour jitter; 2D-only examples
(300W-LP) get centre/scale jitter with the box kept inside the image, a post-crop rotation about the
crop centre and a random-colour mask patch. The crop is warped with the exact box-to-crop map (the
official code scales the image by (S - 1) / b but the labels by S / b; we use S / b for both).

Output (docs/datasets.md): img, K, K_crop, bbox_info, R, t, vtx_world, vtx_cam, vtx_img, lmk68_crop,
has_3d_vtx, has_rot, eval_vertices, id.
"""

from __future__ import annotations

from typing import Any

import ml_collections
import numpy as np

from data_pipelines import image_ops
from data_pipelines.topology import FaceTopology

NUM_FACE_VERTICES = 1220
MASK_PATCH_P = 0.15
S_FLIP = np.diag([-1.0, 1.0, 1.0])


def project(K: np.ndarray, points_cam: np.ndarray) -> np.ndarray:
    """(N, 3) camera points -> (N, 2) pixels."""
    uvw = points_cam @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


def landmark_box(lmk: np.ndarray, scale: float, centre_shift: np.ndarray | None = None) -> np.ndarray:
    """The official square box [l, t, r, b] (int-truncated) around (68, 2) landmarks."""
    lo, hi = lmk.min(0), lmk.max(0)
    centre = (lo + hi) / 2.0
    size = float(np.max(hi - lo))
    if centre_shift is not None:
        centre = centre + centre_shift * size
    half = 0.5 * scale * size
    return np.trunc(np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half]))


def square_box(box: np.ndarray) -> np.ndarray:
    """Any [l, t, r, b] -> the square box with the same centre and side max(width, height)."""
    c = (box[:2] + box[2:]) / 2.0
    half = np.max(box[2:] - box[:2]) / 2.0
    return np.concatenate([c - half, c + half])


def crop_intrinsics(K: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """K of the square box [l, t, r, b] resized to size x size: f' = f size / b, c' = (c - [l, t]) size / b."""
    k = size / (box[2] - box[0])
    return np.diag([k, k, 1.0]) @ np.array([[1.0, 0, -box[0]], [0, 1.0, -box[1]], [0, 0, 1.0]]) @ K


def bbox_info(box: np.ndarray, K: np.ndarray, height: int, width: int) -> np.ndarray:
    """TRG's box input (7,): [l, t, r, b, f, H, W]."""
    return np.array([box[0], box[1], box[2], box[3], K[0, 0], height, width], np.float64)


def crop_inputs(image: np.ndarray, box: np.ndarray, K: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Model inputs for one square box, without augmentation (what `jaxhead.predict` feeds TRG)."""
    crop = image_ops.warp_affine(np.ascontiguousarray(image), image_ops.box_to_crop(box, size), (size, size))
    H, W = image.shape[:2]
    return dict(
        img=image_ops.normalize(crop),
        K=np.asarray(K, np.float32),
        K_crop=crop_intrinsics(K, box, size).astype(np.float32),
        bbox_info=bbox_info(box, K, H, W).astype(np.float32),
    )


def rz(phi: float) -> np.ndarray:
    c, s = np.cos(phi), np.sin(phi)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class TRGTransform:
    """Callable (example, rng | None) -> model inputs and labels; rng None means no augmentation.

    `sample_params(rng, has_3d)` draws one example's augmentation and `apply(example, params)` applies
    it, so the device version (`data_pipelines.augment.trg`) can be checked against this one with the
    same parameters. `host_fields(example)` is what the training pipeline yields when the augmentation
    runs on the device: the decoded image and the geometry, before any warp.
    """

    def __init__(self, data: ml_collections.ConfigDict, topology: FaceTopology):
        self.size = int(data.img_size)
        self.box_scale = float(data.box_scale)
        self.aug = data.augment.to_dict()
        self.kpt_ind = np.asarray(topology.kpt_ind)
        self.flip_index = topology.flip_index

    def __call__(self, ex: dict[str, Any], rng: np.random.Generator | None) -> dict[str, np.ndarray]:
        params = None if rng is None else self.sample_params(rng, bool(ex.get("has_3d", False)))
        return self.apply(ex, params)

    def sample_params(self, rng: np.random.Generator, has_3d: bool) -> dict[str, Any]:
        """One example's augmentation: flip, shift (2,) x box size, scale, rotate, phi (rad),
        colour_order (4,), colour_values (4,) and, for 2D-only examples, the mask patch (mask,
        mask_yx (2,) top-left corner, mask_colour (3,))."""
        aug = self.aug
        flip = has_3d and rng.uniform() < aug["flip_p"]
        shift = rng.uniform(-aug["centre_jitter"], aug["centre_jitter"], 2)
        scale = rng.uniform(*aug["scale_jitter"])
        rotate = rng.uniform() < aug["rotate_p"]
        phi = np.deg2rad(rng.uniform(-aug["rotate_deg"], aug["rotate_deg"])) if rotate else 0.0
        order, values = image_ops.sample_color_jitter(rng, *aug["color_jitter"])
        mask = not has_3d and rng.uniform() < MASK_PATCH_P
        mask_yx = rng.integers(0, self.size - self.size // 5, 2) if mask else np.zeros(2, np.int64)
        mask_colour = rng.integers(0, 256, 3) if mask else np.zeros(3, np.int64)
        return dict(flip=bool(flip), shift=shift, scale=scale, rotate=bool(rotate), phi=phi, colour_order=order,
                    colour_values=values, mask=bool(mask), mask_yx=mask_yx, mask_colour=mask_colour)

    def host_fields(self, ex: dict[str, Any]) -> dict[str, np.ndarray]:
        """The unwarped example for device augmentation: image (H, W, 3) uint8, K, R, t, vtx_world
        (1220, 3), landmarks_2d (68, 2), has_3d_vtx, has_rot, eval_vertices (only where the source has
        them) and id; absent labels are zeros, as in `apply`."""
        has_3d = bool(ex.get("has_3d", False))
        f32 = lambda x: np.asarray(x, np.float32)  # noqa: E731
        out = dict(
            image=np.asarray(ex["image"], np.uint8),
            K=f32(ex["K"]),
            R=f32(ex.get("R", np.eye(3))),
            t=f32(ex.get("t", np.zeros(3))),
            vtx_world=f32(ex["face_vertices"]) if has_3d else np.zeros((NUM_FACE_VERTICES, 3), np.float32),
            landmarks_2d=f32(ex["landmarks_2d"]) if "landmarks_2d" in ex and not has_3d else np.zeros((68, 2), np.float32),
            has_3d_vtx=np.float32(has_3d),
            has_rot=np.float32(bool(ex.get("has_rot", False))),
            id=np.asarray(str(_text(ex["id"]))),
        )
        if "eval_vertices" in ex:
            out["eval_vertices"] = f32(ex["eval_vertices"])
        return out

    def apply(self, ex: dict[str, Any], params: dict[str, Any] | None) -> dict[str, np.ndarray]:
        """One example through the augmentation `params` (`sample_params`; None: none)."""
        image = np.asarray(ex["image"])
        H, W = image.shape[:2]
        K = np.asarray(ex["K"], np.float64).copy()
        has_3d = bool(ex.get("has_3d", False))
        has_rot = bool(ex.get("has_rot", False))
        R = np.asarray(ex.get("R", np.eye(3)), np.float64)
        t = np.asarray(ex.get("t", np.zeros(3)), np.float64)
        world = np.asarray(ex["face_vertices"], np.float64) if has_3d else np.zeros((NUM_FACE_VERTICES, 3))
        train = params is not None
        p = params or {}

        if train and has_3d and p["flip"]:
            if self.flip_index is None:
                raise ValueError(
                    "the flip augmentation needs the face mesh's mirror map: set config.data.flip_index_path "
                    "(ARKitFace's flip_index.npy) or --config.data.augment.flip_p=0"
                )
            image = image[:, ::-1]
            world = world[self.flip_index] @ S_FLIP
            R, t = S_FLIP @ R @ S_FLIP, S_FLIP @ t
            K[0, 2] = W - K[0, 2]

        lmk = project(K, (world[self.kpt_ind] @ R.T) + t) if has_3d else np.asarray(ex["landmarks_2d"], np.float64)
        shift, scale = (np.asarray(p["shift"], np.float64), float(p["scale"])) if train else (None, 1.0)
        box = landmark_box(lmk, self.box_scale * scale, shift)
        warp = image_ops.box_to_crop(box, self.size)

        rotate = train and bool(p["rotate"])
        phi = float(p["phi"]) if rotate else 0.0
        if has_3d:
            if rotate:
                # Re-centre on the projected head origin and turn the head about the optical axis.
                centre = project(K, t[None])[0]
                half = (box[2] - box[0]) / 2.0
                box = np.trunc(np.concatenate([centre - half, centre + half]))
                warp = image_ops.compose(image_ops.box_to_crop(box, self.size), image_ops.rotation_about(centre, phi))
                R = rz(phi) @ R
        else:
            if train:  # keep the box inside the image, as the official 300W-LP loader
                side = box[2] - box[0]
                dx = np.clip(box[0], 0, max(W - side, 0)) - box[0]
                dy = np.clip(box[1], 0, max(H - side, 0)) - box[1]
                box = box + np.array([dx, dy, dx, dy])
                warp = image_ops.box_to_crop(box, self.size)
            if rotate:
                c = np.array([self.size / 2.0, self.size / 2.0])
                warp = image_ops.compose(image_ops.rotation_about(c, phi), warp)

        crop = image_ops.warp_affine(np.ascontiguousarray(image), warp, (self.size, self.size))
        if train:
            crop = image_ops.apply_color_jitter(crop, p["colour_order"], p["colour_values"])
            if not has_3d and p["mask"]:
                side = self.size // 5
                y0, x0 = (int(v) for v in p["mask_yx"])
                crop[y0 : y0 + side, x0 : x0 + side] = np.asarray(p["mask_colour"], np.uint8)

        b = box[2] - box[0]
        cam = world @ R.T + t
        if has_3d:
            pix = project(K, cam)
            vtx_img = np.concatenate([pix, np.ones((len(pix), 1))], 1)
            lmk_crop = (pix[self.kpt_ind] - box[:2]) / b * 2.0 - 1.0
            conf = np.ones((68, 1))
        else:
            vtx_img = np.zeros((NUM_FACE_VERTICES, 3))
            crop_px = image_ops.apply_affine(warp, lmk)
            lmk_crop = crop_px / self.size * 2.0 - 1.0
            conf = np.all((crop_px >= 0) & (crop_px < self.size), axis=1, keepdims=True).astype(np.float64)
        eval_vertices = np.asarray(ex["eval_vertices"], np.float64) if "eval_vertices" in ex else world
        f32 = lambda x: np.asarray(x, np.float32)  # noqa: E731
        return dict(
            img=image_ops.normalize(crop),
            K=f32(K),
            K_crop=f32(crop_intrinsics(K, box, self.size)),
            bbox_info=f32(bbox_info(box, K, H, W)),
            R=f32(R if has_rot else np.eye(3)),
            t=f32(t),
            vtx_world=f32(world),
            vtx_cam=f32(cam),
            vtx_img=f32(vtx_img),
            lmk68_crop=f32(np.concatenate([lmk_crop, conf], 1)),
            has_3d_vtx=np.float32(has_3d),
            has_rot=np.float32(has_rot),
            eval_vertices=f32(eval_vertices),
            id=np.asarray(str(_text(ex["id"]))),
        )


def _text(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)
