"""`aflw2000_3d`: AFLW2000-3D (test only), for head-pose evaluation as the common protocol uses it.

Source layout under --manual_dir (the `AFLW2000` folder of the 3DDFA release):
  imageXXXXX.jpg
  imageXXXXX.mat      Pose_Para (1, 7) = pitch, yaw, roll (radians), tx, ty, tz, scale; pt3d_68 (3, 68)

As in the common protocol (Hopenet, 6DRepNet, TokenHPE), images with any |angle| > 99 degrees are
skipped (counted and reported). The protocol compares Euler angles directly: `euler` stores
(yaw, pitch, roll) in degrees as given. `R` is their composition in TRG's convention
(`flame_jax.rotations.euler_yxz_to_matrix`, R = Rz(roll) Rx(pitch) Ry(yaw)); the sign conventions of
3DDFA's Pose_Para against an OpenCV camera are not verified, so treat R as approximate and prefer
`euler` for metrics. The stand-in camera is f = 5000 with the principal point at the image centre.

Fields: id, image (the source file's bytes; other than 8-bit RGB: converted, JPEG), K, R, euler (3,),
landmarks_2d (68, 2), landmarks_visible (68,),
head_box [l, t, r, b] (the landmarks' bounding box), has_rot, has_translation, has_3d.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines.builders import features as F
from flame_jax.rotations import euler_yxz_to_matrix

FAKE_FOCAL = 5000.0
MAX_ANGLE_DEG = 99.0


def read_label(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(euler (3,) yaw, pitch, roll degrees, landmarks (68, 2)) of one `.mat` file."""
    mat = F.read_mat(path)
    pose = F.field(mat, "Pose_Para", (1, 7), path)[0]
    pts = F.field(mat, "pt3d_68", (3, 68), path)
    pitch, yaw, roll = np.degrees(pose[:3])
    return np.array([yaw, pitch, roll]), pts[:2].T


class Aflw20003d(tfds.core.GeneratorBasedBuilder):
    """AFLW2000-3D in the project's conventions (see the module docstring)."""

    name = "aflw2000_3d"
    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Download AFLW2000-3D (Zhu et al., CVPR 2016) from the 3DDFA project page
    (http://www.cbsr.ia.ac.cn/users/xiangyuzhu/projects/3DDFA/main.htm) and pass the extracted
    `AFLW2000` folder (imageXXXXX.jpg and imageXXXXX.mat) as --manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return F.dataset_info(
            self,
            __doc__,
            id=tfds.features.Text(), image=F.image_feature("jpeg"), K=F.tensor(3, 3), R=F.tensor(3, 3),
            euler=F.tensor(3), landmarks_2d=F.tensor(68, 2), landmarks_visible=F.tensor(68, dtype=np.bool_),
            head_box=F.tensor(4), has_rot=F.scalar_bool(), has_translation=F.scalar_bool(), has_3d=F.scalar_bool(),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        return {"test": self._generate_examples(Path(dl_manager.manual_dir))}

    def _generate_examples(self, root: Path) -> Iterator[tuple[str, dict]]:
        images = sorted(root.glob("image*.jpg"))
        if not images:
            raise F.SourceError(f"{root}: no imageXXXXX.jpg files (expected the AFLW2000 folder)")
        skipped = F.SkipCounter("aflw2000_3d")
        for image_path in images:
            euler, lmk = read_label(image_path.with_suffix(".mat"))
            if np.any(np.abs(euler) > MAX_ANGLE_DEG):
                skipped.skip(f"poses beyond {MAX_ANGLE_DEG:g} degrees")
                continue
            data, (H, W) = F.image_bytes(image_path, "jpeg")
            f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
            yield image_path.stem, dict(
                id=image_path.stem, image=data,
                K=f32([[FAKE_FOCAL, 0, W / 2], [0, FAKE_FOCAL, H / 2], [0, 0, 1]]),
                R=f32(euler_yxz_to_matrix(euler)), euler=f32(euler), landmarks_2d=f32(lmk),
                landmarks_visible=np.ones(68, bool),
                head_box=f32(F.check_box([*lmk.min(0), *lmk.max(0)], image_path.with_suffix(".mat"), "the landmarks' box")),
                has_rot=True, has_translation=False, has_3d=False,
            )
        print(skipped.report(), file=sys.stderr)
