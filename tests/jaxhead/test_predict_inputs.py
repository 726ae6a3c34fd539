"""`jaxhead.predict` input checks: wrong inputs are rejected or converted before any model runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxhead.predict import UsageError, face_box, intrinsics, predict, read_image


def test_a_16_bit_png_keeps_its_tones(tmp_path: Path) -> None:
    grey = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "deep.png")
    rgb = read_image(tmp_path / "deep.png")
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255 and 100 < rgb[32, 0, 0] < 155  # not all white


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, :40] = 255  # left half white, stored landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(image).save(tmp_path / "phone.jpg", exif=exif)
    upright = read_image(tmp_path / "phone.jpg")
    assert upright.shape == (80, 40, 3) and upright[:40].mean() > 200 and upright[40:].mean() < 50


def test_a_decompression_bomb_is_refused(tmp_path: Path, monkeypatch) -> None:
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64x64 is > 2x that: an error, not a warning
    with pytest.raises(UsageError, match="big.png: too large to read safely"):
        read_image(tmp_path / "big.png")


@pytest.mark.parametrize("focal", [float("nan"), float("inf"), -5.0, 0.0])
def test_bad_focal_lengths(focal: float) -> None:
    with pytest.raises(UsageError, match="--focal"):
        intrinsics((64, 64), focal, None)


@pytest.mark.parametrize("box", ["500,500,900,900", "-1e30,-1e30,1e30,1e30", "40,40,200,200"])
def test_boxes_mostly_outside_the_image(box: str) -> None:
    with pytest.raises(UsageError, match="inside the 64x64 image"):
        face_box((64, 64), box)
    assert face_box((64, 64), "10,10,60,70")[0].tolist() == [10, 10, 60, 70]  # mostly inside: kept


def test_inputs_are_checked_before_the_model_loads(tmp_path: Path) -> None:
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        Image.new("RGB", (32, 32)).save(tmp_path / d / "face.png")
    no_workdir = tmp_path / "no_run"
    with pytest.raises(UsageError, match="share the file names \\['face'\\]"):
        predict(no_workdir, [str(tmp_path / "a/face.png"), str(tmp_path / "b/face.png")], tmp_path / "out")
    (tmp_path / "taken").write_text("")
    with pytest.raises(UsageError, match="is a file; give a directory"):
        predict(no_workdir, [str(tmp_path / "a/face.png")], tmp_path / "taken")
    with pytest.raises(UsageError, match="--focal"):
        predict(no_workdir, [str(tmp_path / "a/face.png")], tmp_path / "out", focal=float("nan"))
