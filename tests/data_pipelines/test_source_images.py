"""Source images in any mode reach the datasets as 8-bit RGB: RGBA, CMYK, palette, greyscale and
16-bit files are converted where the builders read them, not left to fail in the pipeline."""

from __future__ import annotations

import importlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_pipelines.builders import features
from tests.data_pipelines.fixture_truth import build

RGB = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)


def _decoded(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.mark.parametrize(
    "name, image, suffix",
    [
        ("rgb_jpeg", Image.fromarray(RGB), ".jpg"),
        ("rgba_png", Image.fromarray(np.dstack([RGB, np.full(RGB.shape[:2], 255, np.uint8)])), ".png"),
        ("cmyk_jpeg", Image.fromarray(RGB).convert("CMYK"), ".jpg"),
        ("palette_png", Image.fromarray(RGB).quantize(16), ".png"),
        ("grey_png", Image.fromarray(RGB[..., 0]), ".png"),
        ("grey16_png", Image.fromarray(RGB[..., 0].astype(np.uint16) * 257), ".png"),
    ],
)
def test_every_mode_is_stored_as_8bit_rgb(name: str, image: Image.Image, suffix: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}{suffix}"
    image.save(path)
    data, (H, W) = features.image_bytes(path, "png")
    stored = _decoded(data)
    assert stored.mode == "RGB" and (H, W) == (12, 16) == (stored.height, stored.width)
    if name == "rgb_jpeg":
        assert data == path.read_bytes()  # already 8-bit RGB: the file's own bytes
    if name in ("rgba_png", "palette_png"):
        np.testing.assert_allclose(np.asarray(stored, float), np.asarray(image.convert("RGB"), float), atol=0)
    if name == "grey16_png":  # scaled by the 16-bit range, not clipped to white
        np.testing.assert_array_equal(np.asarray(stored)[..., 0], RGB[..., 0])


BUILDERS = [  # (fixture module, dataset, the glob of its source images)
    ("test_arkitface", "arkitface", "*_ar.jpg"),
    ("test_w300lp", "w300lp", "*.jpg"),
    ("test_aflw2000_3d", "aflw2000_3d", "*.jpg"),
    ("test_biwi", "biwi", "*.png"),
    ("test_dad3dheads", "dad3dheads", "*.png"),
]


@pytest.mark.parametrize("module, dataset, pattern", BUILDERS, ids=[b[1] for b in BUILDERS])
def test_builders_convert_odd_modes(module: str, dataset: str, pattern: str, tmp_path: Path) -> None:
    importlib.import_module(f"tests.data_pipelines.{module}").write_fixture(tmp_path / "src")
    for i, path in enumerate(sorted((tmp_path / "src").rglob(pattern))):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        # JPEG names get CMYK JPEGs, PNG names alternate RGBA and 16-bit greyscale.
        if path.suffix == ".jpg":
            Image.fromarray(rgb).convert("CMYK").save(path, format="JPEG")
        elif i % 2:
            Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(path)
        else:
            Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(path)
    data = build(dataset, tmp_path / "src", tmp_path / "data")
    examples = [ex for split in data.values() for ex in split.values()]
    assert examples
    for ex in examples:
        assert ex["image"].dtype == np.uint8 and ex["image"].ndim == 3 and ex["image"].shape[-1] == 3
