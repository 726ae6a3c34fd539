"""`biwi`: the BIWI Kinect head-pose database (test only), read as TRG's loader reads it (spec trg.md §7).

Source layout under --manual_dir (the `hpdb` folder of kinect_head_pose_db):
  annot_mtcnn_fan.pkl            dict: img_path (list of 'NN/frame_XXXXX_rgb.png'), mesh {NN: {vertices
                                 (6918, 3) mm, faces}}, pred_kpt {img_path: (68, 3) FAN landmarks, x, y px}
  NN/rgb.cal                     3 lines K; blank; distortion; blank; 3 lines R_ext; blank; T_ext (mm); ...
  NN/frame_XXXXX_rgb.png
  NN/frame_XXXXX_pose.txt        3 lines R_head; blank; T_head (mm)

Pose of the RGB camera: R = R_ext R_head, t = (R_ext T_head + T_ext) / 1000 m (as PerspNet and TRG). ADD is
measured on the subject's neutral template (`eval_vertices`, metres). The annotation pickle is read with
the restricted unpickler. Frames listed in the pickle without a pose file are skipped (and counted),
as the official list holds only frames with one.

Fields: id, image (the source file's bytes; other than 8-bit RGB: converted, PNG), K, R, t, landmarks_2d (68,
2), landmarks_visible (68,),
eval_vertices (6918, 3), has_rot, has_translation, has_3d (false: no per-frame face mesh).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines.builders import features as F
from flame_jax.safe_pickle import safe_load

ANNOTATION = "annot_mtcnn_fan.pkl"
TEMPLATE_VERTICES = 6918


def _rows(path: Path, lines: list[str], start: int, count: int, width: int) -> np.ndarray:
    try:
        rows = [[float(x) for x in lines[start + i].split()] for i in range(count)]
    except (IndexError, ValueError) as e:
        raise F.SourceError(f"{path}: lines {start + 1}-{start + count} must hold {count} x {width} numbers ({e})") from e
    out = np.array(rows)
    if out.shape != (count, width) or not np.all(np.isfinite(out)):
        raise F.SourceError(f"{path}: lines {start + 1}-{start + count} must hold {count} x {width} finite numbers")
    return out


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise F.SourceError(f"{path}: file is missing")
    return path.read_text().splitlines()


def read_calibration(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`rgb.cal` -> (K (3, 3), R_ext (3, 3), T_ext (3,) mm)."""
    lines = _lines(path)
    K = F.check_intrinsics(_rows(path, lines, 0, 3, 3), path, "K (lines 1-3)")
    R_ext = F.check_rotation(_rows(path, lines, 6, 3, 3), path, "R (lines 7-9)")
    return K, R_ext, _rows(path, lines, 10, 1, 3)[0]


def read_pose(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """`frame_XXXXX_pose.txt` -> (R_head (3, 3), T_head (3,) mm)."""
    lines = _lines(path)
    return F.check_rotation(_rows(path, lines, 0, 3, 3), path, "R (lines 1-3)"), _rows(path, lines, 4, 1, 3)[0]


def read_annotation(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise F.SourceError(f"{path}: annotation file is missing")
    data = safe_load(path)
    if not isinstance(data, Mapping) or not {"img_path", "mesh", "pred_kpt"} <= set(data):
        raise F.SourceError(f"{path}: expected a dict with keys 'img_path', 'mesh' and 'pred_kpt'")
    return data


class Biwi(tfds.core.GeneratorBasedBuilder):
    """BIWI in the project's conventions (see the module docstring)."""

    name = "biwi"
    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Request the BIWI Kinect Head Pose Database from ETH Zurich (Fanelli et al., 2013), and download
    `annot_mtcnn_fan.pkl` (linked from TRG-Release) into its `hpdb` folder. Pass
    kinect_head_pose_db/hpdb as --manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return F.dataset_info(
            self,
            __doc__,
            id=tfds.features.Text(), image=F.image_feature("png"), K=F.tensor(3, 3), R=F.tensor(3, 3),
            t=F.tensor(3), landmarks_2d=F.tensor(68, 2), landmarks_visible=F.tensor(68, dtype=np.bool_),
            eval_vertices=F.tensor(TEMPLATE_VERTICES, 3), has_rot=F.scalar_bool(),
            has_translation=F.scalar_bool(), has_3d=F.scalar_bool(),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        root = Path(dl_manager.manual_dir)
        return {"test": F.unique_ids(self._generate_examples(root), root / ANNOTATION)}

    def _generate_examples(self, root: Path) -> Iterator[tuple[str, dict]]:
        ann_path = root / ANNOTATION
        ann = read_annotation(ann_path)
        skipped = F.SkipCounter("biwi")
        calibration: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for rel in ann["img_path"]:
            subject = rel.split("/")[0]
            pose_path = root / rel.replace("_rgb.png", "_pose.txt")
            if not pose_path.is_file():
                skipped.skip("frames without a pose file")
                continue
            if subject not in calibration:
                calibration[subject] = read_calibration(root / subject / "rgb.cal")
            K, R_ext, T_ext = calibration[subject]
            R_head, T_head = read_pose(pose_path)
            if subject not in ann["mesh"]:
                raise F.SourceError(f"{ann_path}: mesh has no subject {subject!r}")
            template = F.field(ann["mesh"][subject], "vertices", (TEMPLATE_VERTICES, 3), f"{ann_path} mesh[{subject!r}]")
            if rel not in ann["pred_kpt"]:
                raise F.SourceError(f"{ann_path}: pred_kpt has no entry {rel!r}")
            kpt = F.field(ann["pred_kpt"], rel, (68, 3), f"{ann_path} pred_kpt")
            data, _ = F.image_bytes(root / rel, "png")
            f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
            yield rel, dict(
                id=rel, image=data, K=f32(K), R=f32(R_ext @ R_head), t=f32((R_ext @ T_head + T_ext) * 1e-3),
                landmarks_2d=f32(kpt[:, :2]), landmarks_visible=np.ones(68, bool), eval_vertices=f32(template * 1e-3),
                has_rot=True, has_translation=True, has_3d=False,
            )
        print(skipped.report(), file=sys.stderr)
