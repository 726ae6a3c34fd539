"""NHWC resizes with torch `F.interpolate` semantics, against loops and (when present) torch."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxhead.ops.resize import resize_bilinear_align_corners, resize_nearest


def bilinear_loops(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """align_corners=True: output (i, j) samples input (i (H-1)/(h-1), j (W-1)/(w-1))."""
    B, H, W, C = x.shape
    out = np.zeros((B, h, w, C))
    for i in range(h):
        for j in range(w):
            y = i * (H - 1) / (h - 1) if h > 1 else 0.0
            xx = j * (W - 1) / (w - 1) if w > 1 else 0.0
            y0, x0 = int(np.floor(y)), int(np.floor(xx))
            y1, x1 = min(y0 + 1, H - 1), min(x0 + 1, W - 1)
            dy, dx = y - y0, xx - x0
            out[:, i, j] = (
                (1 - dy) * (1 - dx) * x[:, y0, x0]
                + (1 - dy) * dx * x[:, y0, x1]
                + dy * (1 - dx) * x[:, y1, x0]
                + dy * dx * x[:, y1, x1]
            )
    return out


SIZES = [(16, 16), (5, 9), (1, 1), (13, 4), (64, 64)]


@pytest.mark.parametrize("size", SIZES)
def test_bilinear_align_corners(size):
    x = np.random.default_rng(0).normal(size=(2, 7, 6, 3)).astype(np.float32)
    got = np.asarray(resize_bilinear_align_corners(jnp.asarray(x), size))
    np.testing.assert_allclose(got, bilinear_loops(x.astype(np.float64), *size), atol=1e-5)
    # Corners coincide.
    if size[0] > 1 and size[1] > 1:
        np.testing.assert_allclose(got[:, [0, -1]][:, :, [0, -1]], x[:, [0, -1]][:, :, [0, -1]], atol=1e-6)


@pytest.mark.parametrize("size", [(16, 12), (4, 3), (3, 5), (8, 6), (11, 7)])
def test_nearest(size):
    x = np.random.default_rng(1).normal(size=(2, 8, 6, 3)).astype(np.float32)
    rows = [int(np.floor(i * 8 / size[0])) for i in range(size[0])]
    cols = [int(np.floor(j * 6 / size[1])) for j in range(size[1])]
    np.testing.assert_array_equal(resize_nearest(jnp.asarray(x), size), x[:, rows][:, :, cols])


def test_nearest_2x_is_repeat_and_even_rows():
    x = np.random.default_rng(2).normal(size=(1, 4, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(resize_nearest(jnp.asarray(x), (8, 12)), x.repeat(2, 1).repeat(2, 2))
    np.testing.assert_array_equal(resize_nearest(jnp.asarray(x), (2, 3)), x[:, ::2, ::2])


@pytest.mark.parametrize("size", [(16, 16), (5, 9), (3, 2)])
def test_matches_torch(size):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.random.default_rng(3).normal(size=(2, 10, 8, 3)).astype(np.float32)
    t = torch.from_numpy(x.transpose(0, 3, 1, 2))
    want = F.interpolate(t, size=size, mode="bilinear", align_corners=True).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(resize_bilinear_align_corners(jnp.asarray(x), size), want, atol=1e-5)
    want = F.interpolate(t, size=size).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(resize_nearest(jnp.asarray(x), size), want)
