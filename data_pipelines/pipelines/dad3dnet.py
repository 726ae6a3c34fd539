"""DAD-3DNet's per-example preprocessing (spec dad3dnet.md §9-10), numpy only.

The head box is enlarged by U[0.05, 0.15) per side (train, and validation unless `val_jitter` is off,
when each side gets the mean 0.10), cut to int32 and clipped to the image; the crop (not square) is
resized so its longest side is S and padded to S x S, centred, with zeros. Targets: the 68 landmarks
(frontal-contour embedding on MV-transformed vertices, projected with P and flipped in y) and all
vertices projected the same way, in crop pixels; presence = strictly inside the crop before resizing;
68 Gaussian heatmaps at S/4 (centre int(xy / 4), radius 5, sigma 11/6, quantised to 1/255).

Output (docs/datasets.md): image, heatmap, landmarks, presence, vertices_2d, vertices, crop_box,
crop_scale, crop_pad, head_box, model_view_matrix, projection_matrix, image_hw, id.
"""

from __future__ import annotations

from typing import Any

import ml_collections
import numpy as np
from PIL import Image

from data_pipelines import image_ops
from data_pipelines.augment.dad3dnet import HEATMAP_RADIUS, HEATMAP_STRIDE
from flame_jax.dad_ground_truth import LandmarkEmbedding, gt_landmarks_2d


def gaussian_heatmaps(points: np.ndarray, presence: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """(68, 2) points in heatmap pixels (already / stride) -> (size, size, 68) float32, quantised to 1/255."""
    out = np.zeros((size, size, len(points)), np.float32)
    d = np.arange(-HEATMAP_RADIUS, HEATMAP_RADIUS + 1)
    g = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2.0 * sigma**2))
    g[g < np.finfo(g.dtype).eps * g.max()] = 0.0
    for k, ((x, y), present) in enumerate(zip(points, presence)):
        if not present:
            continue
        cx, cy = int(x), int(y)
        x0, x1 = max(cx - HEATMAP_RADIUS, 0), min(cx + HEATMAP_RADIUS + 1, size)
        y0, y1 = max(cy - HEATMAP_RADIUS, 0), min(cy + HEATMAP_RADIUS + 1, size)
        if x0 >= x1 or y0 >= y1:
            continue
        patch = g[y0 - cy + HEATMAP_RADIUS : y1 - cy + HEATMAP_RADIUS, x0 - cx + HEATMAP_RADIUS : x1 - cx + HEATMAP_RADIUS]
        out[y0:y1, x0:x1, k] = np.maximum(out[y0:y1, x0:x1, k], patch)
    return np.floor(out * 255.0).astype(np.uint8).astype(np.float32) / 255.0


def enlarged_crop(
    image: np.ndarray, head_box: np.ndarray, sides: np.ndarray, size: int
) -> tuple[np.ndarray, tuple[int, int, int, int], float, np.ndarray]:
    """The official crop: enlarge [l, t, r, b] by `sides` = (left, right, top, bottom) fractions,
    cut to int32, clip to the image, resize the longest side to `size` and pad to size x size, centred.

    Returns (canvas (size, size, 3) uint8, crop corners (x0, y0, x1, y1), scale, pad (2,) [left, top]);
    a crop pixel p maps to the canvas at p * scale + pad.
    """
    H, W = image.shape[:2]
    x, y = head_box[0], head_box[1]
    w, h = head_box[2] - head_box[0], head_box[3] - head_box[1]
    l, r, t, b = sides
    box = np.array([x - w * l, y - h * t, w * (1 + l + r), h * (1 + t + b)]).astype(np.int32)
    x0, y0 = int(np.clip(box[0], 0, W - 1)), int(np.clip(box[1], 0, H - 1))
    x1, y1 = int(np.clip(box[0] + box[2], x0 + 1, W)), int(np.clip(box[1] + box[3], y0 + 1, H))
    crop = image[y0:y1, x0:x1]
    ch, cw = crop.shape[:2]
    scale = size / max(ch, cw)
    nh, nw = max(int(round(ch * scale)), 1), max(int(round(cw * scale)), 1)
    resized = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((nw, nh), Image.BILINEAR))
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[top : top + nh, left : left + nw] = resized
    return canvas, (x0, y0, x1, y1), scale, np.array([left, top], np.float64)


class DAD3DNetTransform:
    """Callable (example, rng | None) -> model inputs and targets; rng None means no random enlargement.

    `sample_params(rng)` draws the enlargement and `apply(example, params)` applies it, so the device
    version (`data_pipelines.augment.dad3dnet`) can be checked against this one with the same
    parameters; `host_fields(example)` is what the training pipeline yields when it runs on the device.
    """

    def __init__(self, data: ml_collections.ConfigDict, embedding: LandmarkEmbedding):
        self.size = int(data.img_size)
        self.enlarge = tuple(data.enlarge)
        self.sigma = float(data.heatmap_sigma)
        self.embedding = embedding

    def __call__(self, ex: dict[str, Any], rng: np.random.Generator | None) -> dict[str, np.ndarray]:
        return self.apply(ex, None if rng is None else self.sample_params(rng))

    def sample_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """sides (4,): the box enlargement (left, right, top, bottom), U[enlarge)."""
        return dict(sides=rng.uniform(*self.enlarge, 4))

    def _image_points(self, ex: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """The 68 landmarks and all vertices in full-image pixels, (68, 2) and (V, 2)."""
        verts = np.asarray(ex["vertices"], np.float64)
        MV = np.asarray(ex["model_view_matrix"], np.float64)
        P = np.asarray(ex["projection_matrix"], np.float64)
        H = np.asarray(ex["image"]).shape[0]
        # Barycentric landmarks commute with MV (affine), so they are taken in model space.
        return gt_landmarks_2d(self.embedding(verts), MV, P, H), gt_landmarks_2d(verts, MV, P, H)

    def host_fields(self, ex: dict[str, Any]) -> dict[str, np.ndarray]:
        """The uncropped example for device augmentation: image (H, W, 3) uint8, landmarks_image (68, 2)
        and vertices_image (V, 2) in full-image pixels, vertices, head_box, model_view_matrix,
        projection_matrix, image_hw and id."""
        image = np.asarray(ex["image"], np.uint8)
        lmk, vert2d = self._image_points(ex)
        f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
        return dict(
            image=image,
            landmarks_image=f32(lmk),
            vertices_image=f32(vert2d),
            vertices=f32(ex["vertices"]),
            head_box=f32(ex["head_box"]),
            model_view_matrix=f32(ex["model_view_matrix"]),
            projection_matrix=f32(ex["projection_matrix"]),
            image_hw=f32(image.shape[:2]),
            id=np.asarray(_text(ex["id"])),
        )

    def apply(self, ex: dict[str, Any], params: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        """One example through the enlargement `params` (`sample_params`; None: the mean)."""
        image = np.asarray(ex["image"])
        H, W = image.shape[:2]
        head_box = np.asarray(ex["head_box"], np.float64)
        lo, hi = self.enlarge
        sides = np.full(4, (lo + hi) / 2.0) if params is None else np.asarray(params["sides"], np.float64)
        canvas, (x0, y0, x1, y1), scale, pad = enlarged_crop(image, head_box, sides, self.size)
        ch, cw = y1 - y0, x1 - x0

        origin = np.array([x0, y0], np.float64)
        lmk, vert2d = (pts - origin for pts in self._image_points(ex))
        presence = (lmk[:, 0] > 0) & (lmk[:, 0] < cw) & (lmk[:, 1] > 0) & (lmk[:, 1] < ch)
        S = self.size
        lmk_s = lmk * scale + pad
        vert_s = vert2d * scale + pad
        f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
        return dict(
            image=image_ops.normalize(canvas),
            heatmap=gaussian_heatmaps(lmk_s / HEATMAP_STRIDE, presence, S // HEATMAP_STRIDE, self.sigma),
            landmarks=f32(lmk_s / S),
            presence=f32(presence),
            vertices_2d=f32(vert_s),
            vertices=f32(ex["vertices"]),
            crop_box=f32([x0, y0, x1 - x0, y1 - y0]),
            crop_scale=f32([scale, scale]),
            crop_pad=f32(pad),
            head_box=f32(head_box),
            model_view_matrix=f32(ex["model_view_matrix"]),
            projection_matrix=f32(ex["projection_matrix"]),
            image_hw=f32([H, W]),
            id=np.asarray(_text(ex["id"])),
        )


def _text(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)
