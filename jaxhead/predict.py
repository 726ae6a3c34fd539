r"""Run a trained model on images:

    python -m jaxhead.predict --workdir=DIR IMAGE... [--box=x0,y0,x1,y1] [--focal=F | --K=fx,fy,cx,cy] --out=OUTDIR

Per image (one face, in the box), into OUTDIR:
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
from typing import Any

import jax
import ml_collections
import numpy as np
import trimesh
from absl import app, flags
from flax import nnx
from PIL import Image, UnidentifiedImageError

from flame_jax.rotations import matrix_to_euler_yxz
from jaxhead import checkpoint, visualize
from jaxhead.tasks import make_task
from jaxhead.training.data import DataInfo

DEMO_FOCAL = 5000.0

flags.DEFINE_string("workdir", None, "A workdir with a checkpoint (jaxhead.train or jaxhead.import_torch).")
flags.DEFINE_string("box", None, "Face box x0,y0,x1,y1 in pixels (default: the whole image).")
flags.DEFINE_float("focal", None, "Focal length in pixels; the principal point is the image centre.")
flags.DEFINE_string("K", None, "Intrinsics fx,fy,cx,cy in pixels.")
flags.DEFINE_string("out", None, "Output directory.")
flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
flags.mark_flags_as_required(["workdir", "out"])


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
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as e:
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
    elif focal <= 0:
        raise UsageError(f"--focal={focal}: must be positive")
    return np.array([[focal, 0, W / 2.0], [0, focal, H / 2.0], [0, 0, 1.0]]), note


def face_box(image_hw: tuple[int, int], box_text: str | None) -> tuple[np.ndarray, str | None]:
    H, W = image_hw
    if box_text is None:
        return np.array([0.0, 0.0, W, H]), "no --box given: using the whole image as the face box"
    box = parse_numbers(box_text, 4, "box", "x0,y0,x1,y1")
    if box[2] <= box[0] or box[3] <= box[1]:
        raise UsageError(f"--box={box_text!r}: needs x1 > x0 and y1 > y0")
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
        name = self.config.model.name
        if name == "trg":
            from data_pipelines.topology import load_topology

            info = DataInfo(data_dir="", num_examples={}, topology=load_topology(self.config.data, self.config.model))
        else:
            from jaxhead.tasks.dad3dnet import load_flame_model

            info = DataInfo(data_dir="", num_examples={}, flame_model=load_flame_model(self.config))
        self.task = make_task(self.config, data_info=info)
        self._jitted = nnx.jit(self.task.predict)
        self.size = int(self.config.model.img_size)

    def _predict(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return jax.device_get(self._jitted(self.model, batch))

    def __call__(self, image: np.ndarray, box: np.ndarray, K: np.ndarray) -> tuple[dict[str, Any], np.ndarray, dict]:
        """One face -> (JSON-ready result, mesh vertices, drawing data)."""
        if self.config.model.name == "trg":
            return self._trg(image, box, K)
        return self._dad(image, box)

    def _trg(self, image: np.ndarray, box: np.ndarray, K: np.ndarray) -> tuple[dict[str, Any], np.ndarray, dict]:
        from data_pipelines.pipelines.trg import crop_inputs, square_box

        inputs = crop_inputs(image, square_box(box), K, self.size)
        pred = self._predict({k: v[None] for k, v in inputs.items()})
        R, t, face = (np.asarray(pred[k][0], np.float64) for k in ("R", "t", "face_cam"))
        yaw, pitch, roll = (float(a) for a in np.asarray(matrix_to_euler_yxz(R)))
        result = dict(
            R=R.tolist(), t=t.tolist(), yaw=yaw, pitch=pitch, roll=roll,
            box=square_box(box).tolist(), K=K.tolist(), vertices_cam=face.tolist(),
        )
        draw = dict(points=visualize.project(face, K), R=R, t=t, K=K)
        return result, face, draw

    def _dad(self, image: np.ndarray, box: np.ndarray) -> tuple[dict[str, Any], np.ndarray, dict]:
        from data_pipelines import image_ops
        from data_pipelines.pipelines.dad3dnet import enlarged_crop
        from jaxhead.models.dad3dnet_mesh import split_params

        lo, hi = self.config.data.enlarge
        canvas, (x0, y0, _, _), scale, pad = enlarged_crop(image, box, np.full(4, (lo + hi) / 2.0), self.size)
        pred = self._predict({"image": image_ops.normalize(canvas)[None]})
        to_image = lambda p: (np.asarray(p, np.float64) - pad) / scale + [x0, y0]  # noqa: E731
        params = np.asarray(pred["params"][0])
        parts = {k: np.asarray(v).tolist() for k, v in split_params(params, self.config.model.n_shape, self.config.model.n_expr).items()}
        landmarks, verts2d = to_image(pred["landmarks"][0]), to_image(pred["vertices_2d"][0])
        result = dict(
            landmarks_68=landmarks.tolist(), projected_vertices=verts2d.tolist(), flame_params=parts,
            R=np.asarray(pred["R"][0]).tolist(), crop_box=[x0, y0, float(scale)],
        )
        draw = dict(points=verts2d, R=np.asarray(pred["R"][0], np.float64), landmarks=landmarks)
        return result, np.asarray(pred["vertices_3d"][0], np.float64), draw

    def faces(self) -> np.ndarray:
        if self.config.model.name == "trg":
            return np.asarray(self.task.topology.triangles)
        return np.asarray(self.task.flame.faces)

    def overlay(self, image: np.ndarray, draw: dict, path: Path) -> None:
        fig, (ax,) = visualize.image_grid(1, cell=6.0)
        visualize.show_image(ax, image)
        if self.config.model.name == "trg":
            visualize.draw_wireframe(ax, draw["points"], self.task.edges, alpha=0.5)
            visualize.draw_axes(ax, draw["R"], draw["t"], draw["K"], lw=2.5)
        else:
            visualize.draw_wireframe(ax, draw["points"], self.task.edges, alpha=0.4)
            visualize.draw_landmarks(ax, draw["landmarks"], size=6)
            centre, length = draw["points"].mean(0), 0.25 * np.ptp(draw["points"][:, 1])
            for k, colour in enumerate(visualize.AXIS_COLOURS):
                ax.plot(*zip(centre, centre + length * draw["R"][:2, k]), color=colour, linewidth=2.5)
        visualize.save_figure(fig, path)


def predict(
    workdir: str | Path, images: list[str], out: str | Path, *, box: str | None = None,
    focal: float | None = None, K: str | None = None, step: int | None = None,
) -> list[Path]:
    """Runs the workdir's model on each image; returns the JSON paths written."""
    paths = [Path(p) for p in images]
    if not paths:
        raise UsageError("give at least one IMAGE")
    loaded = [read_image(p) for p in paths]  # all inputs are checked before any work
    if K is not None:
        parse_numbers(K, 4, "K", "fx,fy,cx,cy")
    predictor = Predictor(workdir, step)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path, image in zip(paths, loaded):
        face_box_px, box_note = face_box(image.shape[:2], box)
        K_px, k_note = intrinsics(image.shape[:2], focal, K)
        for note in (box_note, k_note if predictor.config.model.name == "trg" else None):
            if note:
                print(f"{path.name}: {note}", file=sys.stderr)
        result, vertices, draw = predictor(image, face_box_px, K_px)
        result.update(image=str(path), model=predictor.config.model.name, step=predictor.step)
        stem = out / path.stem
        write_atomic(stem.with_suffix(".json"), json.dumps(result, indent=1).encode())
        save_mesh(stem.with_suffix(".obj"), vertices, predictor.faces())
        predictor.overlay(image, draw, stem.with_suffix(".png"))
        print(f"{path} -> {stem}.json, .obj, .png")
        written.append(stem.with_suffix(".json"))
    return written


def main(argv: list[str]) -> None:
    FLAGS = flags.FLAGS
    try:
        predict(FLAGS.workdir, argv[1:], FLAGS.out, box=FLAGS.box, focal=FLAGS.focal, K=FLAGS.K, step=FLAGS.step)
    except (UsageError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    app.run(main)
