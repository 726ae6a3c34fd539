"""Image operations of the input pipelines, in numpy and PIL (they run in grain worker processes,
where JAX is not used).

Pixel coordinates have their origin at the top-left corner of the top-left pixel (docs/conventions.md).
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import hsv_to_rgb, rgb_to_hsv
from PIL import Image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma, as torchvision


def to_rgb8(im: Image.Image) -> Image.Image:
    """8-bit RGB from any PIL mode (RGBA, CMYK, palette, greyscale, 16-bit); 16-bit and float
    greyscale are scaled by their full range, not clipped to white as PIL's convert would."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, np.float64)
        full = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        return Image.fromarray(np.clip(a / full * 255.0 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    return im.convert("RGB")


def normalize(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> float32 ImageNet-normalised."""
    return (image.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD


def warp_affine(image: np.ndarray, A: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Warps (H, W, 3) uint8 by the 2x3 map A (source pixel -> output pixel) into (h, w) = size,
    bilinear, black outside the source."""
    M = np.vstack([A, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(M)[:2].reshape(-1)  # PIL wants output -> source
    out = Image.fromarray(image).transform(
        (size[1], size[0]), Image.AFFINE, data=tuple(inv), resample=Image.BILINEAR, fillcolor=(0, 0, 0)
    )
    return np.asarray(out)


def box_to_crop(box: np.ndarray, size: int) -> np.ndarray:
    """2x3 map of the square box [l, t, r, b] onto a size x size crop (scale size / (r - l))."""
    k = size / (box[2] - box[0])
    return np.array([[k, 0.0, -k * box[0]], [0.0, k, -k * box[1]]])


def rotation_about(centre: np.ndarray, angle_rad: float) -> np.ndarray:
    """2x3 map rotating image points by angle (x toward y, i.e. clockwise on screen) about centre."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    Rm = np.array([[c, -s], [s, c]])
    return np.hstack([Rm, (centre - Rm @ centre)[:, None]])


def compose(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """2x3 maps: first B, then A."""
    return (np.vstack([A, [0, 0, 1]]) @ np.vstack([B, [0, 0, 1]]))[:2]


def apply_affine(A: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) points through the 2x3 map A."""
    return points @ A[:, :2].T + A[:, 2]


def sample_color_jitter(
    rng: np.random.Generator, brightness: float, contrast: float, saturation: float, hue: float
) -> tuple[np.ndarray, np.ndarray]:
    """torchvision-style ColorJitter parameters: a random order (4,) of [brightness, contrast,
    saturation, hue] and their values (4,): factors U(1 - x, 1 + x), hue shift U(-h, h); a disabled
    op (strength 0) gets the identity (factor 1, shift 0) and draws nothing."""
    order = rng.permutation(4)
    values = np.array([1.0, 1.0, 1.0, 0.0])
    for op in order:
        if op < 3 and (brightness, contrast, saturation)[op] > 0:
            x = (brightness, contrast, saturation)[op]
            values[op] = rng.uniform(1 - x, 1 + x)
        elif op == 3 and hue > 0:
            values[op] = rng.uniform(-hue, hue)
    return order, values


def apply_color_jitter(image: np.ndarray, order: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 through the four jitter ops in `order` with `values` (`sample_color_jitter`),
    clipped to [0, 1] after each; identity values still run (the device version always does)."""
    x = image.astype(np.float32) / 255.0
    for op in order:
        if op == 0:
            x = x * np.float32(values[0])
        elif op == 1:
            grey = np.mean(x @ GREY_WEIGHTS)
            x = (x - grey) * np.float32(values[1]) + grey
        elif op == 2:
            grey = (x @ GREY_WEIGHTS)[..., None]
            x = (x - grey) * np.float32(values[2]) + grey
        else:
            hsv = rgb_to_hsv(np.clip(x, 0, 1))
            hsv[..., 0] = (hsv[..., 0] + np.float32(values[3])) % 1.0
            x = hsv_to_rgb(hsv)
        x = np.clip(x, 0.0, 1.0)
    return (x * 255.0 + 0.5).astype(np.uint8)
