"""Shared pieces of the TFDS builders: feature specs, image encoding, and checked readers
that turn a bad source file into an error naming the file and the field.

Every builder stores the fields of docs/datasets.md in the conventions of docs/conventions.md.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import scipy.io
import tensorflow_datasets as tfds
from PIL import Image, UnidentifiedImageError


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


def read_image(path: Path) -> np.ndarray:
    """An RGB image file -> (H, W, 3) uint8; a missing or corrupt file is a SourceError."""
    if not path.is_file():
        raise SourceError(f"{path}: image file is missing")
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise SourceError(f"{path}: not a readable image ({e})") from e


def image_bytes(path: Path) -> tuple[bytes, tuple[int, int], str]:
    """A source image's bytes as stored (checked by decoding it once), its (H, W) and format."""
    image = read_image(path)
    fmt = "jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "png"
    return path.read_bytes(), image.shape[:2], fmt


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
