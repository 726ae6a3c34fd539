"""Shared pieces of the TFDS builders: feature specs, image encoding, and checked readers
that turn a bad source file into an error naming the file and the field.

Every builder stores the fields of docs/datasets.md in the conventions of docs/conventions.md.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import scipy.io
import tensorflow_datasets as tfds
from PIL import Image, UnidentifiedImageError

from data_pipelines.image_ops import to_rgb8


class SourceError(ValueError):
    """A source file is missing, unreadable, or lacks a field in the expected form."""


def image_feature(encoding: str = "png") -> tfds.features.Image:
    return tfds.features.Image(shape=(None, None, 3), encoding_format=encoding)


def tensor(*shape: int, dtype: Any = np.float32) -> tfds.features.Tensor:
    return tfds.features.Tensor(shape=tuple(shape), dtype=dtype)


def scalar_bool() -> tfds.features.Scalar:
    return tfds.features.Scalar(dtype=np.bool_)


def dataset_info(builder: tfds.core.DatasetBuilder, description: str, **fields: tfds.features.FeatureConnector) -> tfds.core.DatasetInfo:
    """The DatasetInfo of a builder whose examples hold `fields` (TF-free form)."""
    return tfds.core.DatasetInfo(builder=builder, description=description, features=tfds.features.FeaturesDict(fields))


def encode_image(image: np.ndarray, fmt: str = "png", quality: int = 95) -> bytes:
    """(H, W, 3) uint8 -> encoded bytes (a numpy array given to tfds would need TensorFlow)."""
    buf = io.BytesIO()
    kwargs = dict(quality=quality) if fmt == "jpeg" else {}
    Image.fromarray(np.ascontiguousarray(image, np.uint8)).save(buf, format=fmt.upper(), **kwargs)
    return buf.getvalue()


def _open(path: Path) -> tuple[Image.Image, str | None]:
    """The decoded source image and its file format; a missing or corrupt file is a SourceError."""
    if not path.is_file():
        raise SourceError(f"{path}: image file is missing")
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy(), im.format
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise SourceError(f"{path}: not a readable image ({e})") from e


def image_bytes(path: Path, encoding: str) -> tuple[bytes, tuple[int, int]]:
    """A source image as stored in the dataset, and its (H, W).

    An 8-bit RGB JPEG or PNG is stored as its own bytes. Anything else (RGBA, CMYK, palette,
    greyscale, 16-bit, other formats) would decode later into arrays the pipelines do not
    take, so it is converted to 8-bit RGB here and stored re-encoded as `encoding`.
    """
    im, fmt = _open(path)
    if im.mode == "RGB" and fmt in ("JPEG", "PNG"):
        return path.read_bytes(), (im.height, im.width)
    rgb = np.asarray(to_rgb8(im))
    return encode_image(rgb, encoding), rgb.shape[:2]


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise SourceError(f"{path}: file is missing")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: not valid JSON ({e})") from e


def read_mat(path: Path) -> dict[str, Any]:
    """A MATLAB .mat file's variables; a missing or unreadable file is a SourceError."""
    if not path.is_file():
        raise SourceError(f"{path}: file is missing")
    try:
        return scipy.io.loadmat(path)
    except (ValueError, OSError, TypeError) as e:
        raise SourceError(f"{path}: not a readable .mat file ({e})") from e


def field(source: Mapping[str, Any], key: str, shape: tuple[int | None, ...], where: Path | str) -> np.ndarray:
    """`source[key]` as a finite float64 array of `shape` (None: any length), or a SourceError."""
    if key not in source:
        raise SourceError(f"{where}: missing field {key!r} (expected shape {_fmt(shape)})")
    try:
        value = np.asarray(source[key], np.float64)
    except (TypeError, ValueError) as e:
        raise SourceError(f"{where}: field {key!r} is not numeric ({e})") from e
    if value.ndim != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
        raise SourceError(f"{where}: field {key!r} has shape {value.shape}, expected {_fmt(shape)}")
    if not np.all(np.isfinite(value)):
        raise SourceError(f"{where}: field {key!r} holds NaN or infinite values")
    return value


def check_intrinsics(K: np.ndarray, where: Path | str, name: str = "K") -> np.ndarray:
    """A finite (3, 3) camera matrix with non-zero focal lengths and last row [0, 0, 1]."""
    K = np.asarray(K, np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)):
        raise SourceError(f"{where}: {name} must be a finite 3x3 camera matrix, got {K.tolist()}")
    if abs(K[0, 0]) < 1e-9 or abs(K[1, 1]) < 1e-9 or not np.allclose(K[2], [0, 0, 1]):
        raise SourceError(f"{where}: {name} {K.tolist()} is degenerate: expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] "
                          "with non-zero focal lengths")
    return K


def check_rotation(R: np.ndarray, where: Path | str, name: str = "R", tol: float = 1e-2) -> np.ndarray:
    """A (3, 3) rotation: orthonormal within `tol`, determinant +1."""
    R = np.asarray(R, np.float64)
    if R.shape != (3, 3) or not np.all(np.isfinite(R)):
        raise SourceError(f"{where}: {name} must be a finite 3x3 rotation, got {R.tolist()}")
    if np.abs(R @ R.T - np.eye(3)).max() > tol or np.linalg.det(R) < 0:
        raise SourceError(f"{where}: {name} is not a rotation (R Rt = I, det +1 within {tol}): {R.round(4).tolist()}")
    return R


def check_linear(M: np.ndarray, where: Path | str, name: str) -> np.ndarray:
    """A (3, 3) linear map that is not degenerate (e.g. a scaled rotation): |det| above 1e-9 of its scale."""
    M = np.asarray(M, np.float64)
    scale = np.abs(M).max()
    if not scale or abs(np.linalg.det(M)) < 1e-9 * scale**3:
        raise SourceError(f"{where}: {name} is degenerate (zero or singular): {M.round(4).tolist()}")
    return M


def check_box(box: np.ndarray, where: Path | str, name: str) -> np.ndarray:
    """A finite [x0, y0, x1, y1] box with x1 > x0 and y1 > y0."""
    box = np.asarray(box, np.float64)
    if box.shape != (4,) or not np.all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
        raise SourceError(f"{where}: {name} {box.tolist()} is empty or inverted; expected [x0, y0, x1, y1], x1 > x0, y1 > y0")
    return box


def unique_ids(examples: Iterator[tuple[str, Any]], where: Path | str) -> Iterator[tuple[str, Any]]:
    """Passes (id, example) pairs through, refusing an id seen before (TFDS would fail later,
    with a message that names neither the id nor the file)."""
    seen: set[str] = set()
    for key, example in examples:
        if key in seen:
            raise SourceError(f"{where}: example id {key!r} appears twice")
        seen.add(key)
        yield key, example


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"


class SkipCounter:
    """Counts the items a builder skips where the official loader skips them, reported at the end."""

    def __init__(self, dataset: str):
        self.dataset = dataset
        self.reasons: dict[str, int] = {}

    def skip(self, reason: str) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def report(self) -> str:
        if not self.reasons:
            return f"{self.dataset}: no items skipped"
        parts = ", ".join(f"{n} {reason}" for reason, n in sorted(self.reasons.items()))
        return f"{self.dataset}: skipped {sum(self.reasons.values())} items ({parts})"
