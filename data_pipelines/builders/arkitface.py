"""`arkitface`: ARKitFace (TRG's main dataset), read as the official TRG loader reads it (spec trg.md §7).

Source layout under --manual_dir (the `dataset/ARKitFace` folder):
  ARKitFace_list/list/ARKitFace_{train,test}.csv                  columns subject_id, facial_action, img_id
  ARKitFace_image_{split}/image/<subject_id>/<facial_action>/<img_id>_ar.jpg
  ARKitFace_info_{split}/info/<subject_id>/<facial_action>/<img_id>_info.npz   keys verts (1220, 3), R_t (4, 4)

Conversions into docs/conventions.md: `R_t` is stored in row-vector form for the OpenGL camera
(x_gl = [X, 1] @ R_t); the OpenCV pose is R = F R_gl F, t = F t_gl with F = diag(1, -1, -1), and the
face vertices go to the head frame as F verts. K = [[1.57443701 W/2, 0, W/2], [0, 1.57443701 H/2, H/2],
[0, 0, 1]] (the ARKit projection matrix of TRG-Release's `npy/projection_matrix.txt`).

Fields: id, image (the source file's bytes; other than 8-bit RGB: converted, JPEG), K, R, t, face_vertices
(1220, 3), has_rot, has_translation, has_3d.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines.builders import features as F

ARKIT_PROJ_DIAG = 1.57443701
FLIP = np.diag([1.0, -1.0, -1.0])
CSV_COLUMNS = ("subject_id", "facial_action", "img_id")


def arkit_intrinsics(height: int, width: int) -> np.ndarray:
    return np.array([[ARKIT_PROJ_DIAG * width / 2, 0, width / 2], [0, ARKIT_PROJ_DIAG * height / 2, height / 2], [0, 0, 1.0]])


def split_list(root: Path, split: str) -> Path:
    return root / "ARKitFace_list" / "list" / f"ARKitFace_{split}.csv"


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise F.SourceError(f"{path}: split list is missing")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise F.SourceError(f"{path}: missing column(s) {missing}; expected {list(CSV_COLUMNS)}")
        return list(reader)


def read_label(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(verts (1220, 3) head frame, R (3, 3), t (3,)) from an `_info.npz`, converted."""
    if not path.is_file():
        raise F.SourceError(f"{path}: label file is missing")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise F.SourceError(f"{path}: not a readable npz ({e})") from e
    verts = F.field(data, "verts", (1220, 3), path)
    R_t = F.field(data, "R_t", (4, 4), path)
    pose = R_t.T  # row-vector storage
    R = F.check_rotation(FLIP @ pose[:3, :3] @ FLIP, path, "R_t[:3, :3]")
    return verts @ FLIP, R, FLIP @ pose[:3, 3]


class Arkitface(tfds.core.GeneratorBasedBuilder):
    """ARKitFace in the project's conventions (see the module docstring)."""

    name = "arkitface"
    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    ARKitFace is distributed by the PerspNet authors (Kao et al., "Towards 3D Face Reconstruction in
    Perspective Projection", AAAI 2023; https://github.com/cbsropenproject/6dof_face) after a signed
    agreement. Pass the folder that holds ARKitFace_list/, ARKitFace_image_{train,test}/ and
    ARKitFace_info_{train,test}/ as --manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return F.dataset_info(
            self,
            __doc__,
            id=tfds.features.Text(), image=F.image_feature("jpeg"), K=F.tensor(3, 3), R=F.tensor(3, 3),
            t=F.tensor(3), face_vertices=F.tensor(1220, 3), has_rot=F.scalar_bool(),
            has_translation=F.scalar_bool(), has_3d=F.scalar_bool(),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        root = Path(dl_manager.manual_dir)
        return {
            split: F.unique_ids(self._generate_examples(root, split), split_list(root, split))
            for split in ("train", "test")
        }

    def _generate_examples(self, root: Path, split: str) -> Iterator[tuple[str, dict]]:
        rows = read_rows(split_list(root, split))
        for row in rows:
            rel = Path(row["subject_id"]) / row["facial_action"]
            image_path = root / f"ARKitFace_image_{split}" / "image" / rel / f"{row['img_id']}_ar.jpg"
            label_path = root / f"ARKitFace_info_{split}" / "info" / rel / f"{row['img_id']}_info.npz"
            data, (H, W) = F.image_bytes(image_path, "jpeg")
            verts, R, t = read_label(label_path)
            key = f"{split}/{rel}/{row['img_id']}"
            yield key, dict(
                id=key, image=data, K=arkit_intrinsics(H, W).astype(np.float32), R=R.astype(np.float32),
                t=t.astype(np.float32), face_vertices=verts.astype(np.float32), has_rot=True,
                has_translation=True, has_3d=True,
            )
        print(f"arkitface {split}: {len(rows)} examples", file=sys.stderr)
