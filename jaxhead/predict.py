r"""Run a trained model on images:

    python -m jaxhead.predict --workdir=DIR IMAGE... [--box=x0,y0,x1,y1] [--focal=F | --K=fx,fy,cx,cy] --out=OUTDIR

Per image (one face, in the box), into OUTDIR (what each file holds is the model's task's:
`photo_outputs`):
- TRG: `<name>.json` (R, t in metres, yaw/pitch/roll in degrees, the 1220 camera-space vertices),
  `<name>.obj` (the camera-space face mesh) and `<name>.png` (mesh and pose axes over the image).
- DAD-3DNet: `<name>.json` (68 landmarks and projected head vertices in image pixels, FLAME
  parameters, rotation), `<name>.obj` (the FLAME mesh in model space, jaw posed) and `<name>.png`.

Without --box the whole image is the box; TRG squares any box about its centre. Without intrinsics,
TRG uses the official demo's camera: f = 5000 pixels, principal point at the image centre.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import jax
import ml_collections
import numpy as np
import trimesh
from absl import app, flags
from flax import nnx
from PIL import Image, ImageOps, UnidentifiedImageError

from data_pipelines.image_ops import to_rgb8
from jaxhead import checkpoint, visualize
from jaxhead.tasks import PhotoResult, make_task

DEMO_FOCAL = 5000.0
# A face box must lie at least this much inside the image: outside it there is only padding.
MIN_BOX_INSIDE = 0.5


class UsageError(ValueError):
    """Bad command-line input (an argument or an input file)."""


def parse_numbers(text: str, count: int, name: str, form: str) -> np.ndarray:
    try:
        values = np.array([float(v) for v in text.split(",")], np.float64)
    except ValueError:
        raise UsageError(f"--{name}={text!r}: expected {count} comma-separated numbers {form}") from None
    if len(values) != count or not np.all(np.isfinite(values)):
        raise UsageError(f"--{name}={text!r}: expected {count} comma-separated finite numbers {form}")
    return values


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB, upright as the camera's EXIF orientation says."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            return np.asarray(to_rgb8(ImageOps.exif_transpose(im)))
    except Image.DecompressionBombError as e:
        raise UsageError(f"{path}: too large to read safely ({e}); downscale it first") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise UsageError(f"{path}: not a readable image ({e})") from None


def intrinsics(image_hw: tuple[int, int], focal: float | None, K_text: str | None) -> tuple[np.ndarray, str | None]:
    """(3, 3) K and, where a default was used, a note saying so."""
    H, W = image_hw
    if K_text is not None and focal is not None:
        raise UsageError("give either --focal or --K, not both")
    if K_text is not None:
        fx, fy, cx, cy = parse_numbers(K_text, 4, "K", "fx,fy,cx,cy")
        if fx <= 0 or fy <= 0:
            raise UsageError(f"--K={K_text!r}: focal lengths must be positive")
        return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]]), None
    note = None
    if focal is None:
        focal, note = DEMO_FOCAL, f"no intrinsics given: using the official demo's f = {DEMO_FOCAL:g} px, principal point at the image centre"
    elif not np.isfinite(focal) or focal <= 0:
        raise UsageError(f"--focal={focal}: must be a finite positive number of pixels")
    return np.array([[focal, 0, W / 2.0], [0, focal, H / 2.0], [0, 0, 1.0]]), note


def face_box(image_hw: tuple[int, int], box_text: str | None) -> tuple[np.ndarray, str | None]:
    H, W = image_hw
    if box_text is None:
        return np.array([0.0, 0.0, W, H]), "no --box given: using the whole image as the face box"
    box = parse_numbers(box_text, 4, "box", "x0,y0,x1,y1")
    if box[2] <= box[0] or box[3] <= box[1]:
        raise UsageError(f"--box={box_text!r}: needs x1 > x0 and y1 > y0")
    inside = max(0.0, min(box[2], W) - max(box[0], 0.0)) * max(0.0, min(box[3], H) - max(box[1], 0.0))
    if inside < MIN_BOX_INSIDE * (box[2] - box[0]) * (box[3] - box[1]):
        raise UsageError(
            f"--box={box_text!r}: less than {MIN_BOX_INSIDE:.0%} of the box lies inside the {W}x{H} image; "
            "give the face's box in this image's pixels"
        )
    return box, None


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def save_mesh(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    mesh = trimesh.Trimesh(vertices=np.asarray(vertices, np.float64), faces=np.asarray(faces), process=False)
    write_atomic(path, trimesh.exchange.obj.export_obj(mesh).encode())


class Predictor:
    """A workdir's model with its task, for single images."""

    def __init__(self, workdir: str | Path, step: int | None = None):
        self.model, config, self.step = checkpoint.load_model(workdir, step)
        self.config = ml_collections.ConfigDict(config.to_dict())
        self.task = make_task(self.config)
        self._jitted = nnx.jit(self.task.predict)

    def __call__(self, image: np.ndarray, box: np.ndarray, K: np.ndarray) -> PhotoResult:
        """One face of `image` (H, W, 3) uint8 in `box` [x0, y0, x1, y1], camera K (3, 3)."""
        batch, context = self.task.photo_inputs(image, box, K)
        return self.task.photo_outputs(jax.device_get(self._jitted(self.model, batch)), context)

    def overlay(self, image: np.ndarray, result: PhotoResult, path: Path) -> None:
        fig, (ax,) = visualize.image_grid(1, cell=6.0)
        visualize.show_image(ax, image)
        self.task.draw_photo(ax, result)
        visualize.save_figure(fig, path)


def predict(
    workdir: str | Path, images: list[str], out: str | Path, *, box: str | None = None,
    focal: float | None = None, K: str | None = None, step: int | None = None,
) -> list[Path]:
    """Runs the workdir's model on each image; returns the JSON paths written."""
    paths = [Path(p) for p in images]
    if not paths:
        raise UsageError("give at least one IMAGE")
    # Every input is checked before the model is loaded.
    if K is not None:
        parse_numbers(K, 4, "K", "fx,fy,cx,cy")
    stems = [p.stem for p in paths]
    repeated = sorted({s for s in stems if stems.count(s) > 1})
    if repeated:
        raise UsageError(f"inputs share the file names {repeated}: their outputs would overwrite each other")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out={out}: is a file; give a directory")
    inputs = []
    for path in paths:
        image = read_image(path)
        inputs.append((path, image, face_box(image.shape[:2], box), intrinsics(image.shape[:2], focal, K)))
    predictor = Predictor(workdir, step)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path, image, (face_box_px, box_note), (K_px, k_note) in inputs:
        for note in (box_note, k_note if predictor.task.uses_intrinsics else None):
            if note:
                print(f"{path.name}: {note}", file=sys.stderr)
        result = predictor(image, face_box_px, K_px)
        values = dict(result.values, image=str(path), model=predictor.config.model.name, step=predictor.step)
        stem = out / path.stem
        write_atomic(stem.with_suffix(".json"), json.dumps(values, indent=1).encode())
        save_mesh(stem.with_suffix(".obj"), result.vertices, predictor.task.mesh_faces())
        predictor.overlay(image, result, stem.with_suffix(".png"))
        print(f"{path} -> {stem}.json, .obj, .png")
        written.append(stem.with_suffix(".json"))
    return written


def define_flags() -> None:
    """The CLI flags; defined on demand so that importing this module defines none."""
    flags.DEFINE_string("workdir", None, "A workdir with a checkpoint (jaxhead.train or jaxhead.import_torch).")
    flags.DEFINE_string("box", None, "Face box x0,y0,x1,y1 in pixels (default: the whole image).")
    flags.DEFINE_float("focal", None, "Focal length in pixels; the principal point is the image centre.")
    flags.DEFINE_string("K", None, "Intrinsics fx,fy,cx,cy in pixels.")
    flags.DEFINE_string("out", None, "Output directory.")
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
    flags.mark_flags_as_required(["workdir", "out"])


def main(argv: list[str]) -> None:
    FLAGS = flags.FLAGS
    try:
        predict(FLAGS.workdir, argv[1:], FLAGS.out, box=FLAGS.box, focal=FLAGS.focal, K=FLAGS.K, step=FLAGS.step)
    except (UsageError, FileNotFoundError, checkpoint.NonFiniteStateError, checkpoint.CorruptCheckpointError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
