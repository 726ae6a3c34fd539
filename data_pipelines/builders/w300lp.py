"""`w300lp`: 300W-LP with 2D landmarks only, as TRG's loader uses it for TRG* (spec trg.md §7).

Source layout under --manual_dir (the `300W_LP` folder):
  files.txt                                        one relative image path per line, no extension
  <path>.jpg                                       e.g. AFW/AFW_134212_1_0.jpg, AFW_Flip/AFW_134212_1_0.jpg
  landmarks/<AFW|HELEN|IBUG|LFPW>/<file>_pts.mat   key pts_3d (68, 2), x, y in pixels

A `_Flip` image uses the landmarks of its original, mirrored: x' = W - 1 - x (as the official loader)
and the iBUG left/right permutation. Only 2D supervision exists: R = I, t = 0, has_3d = has_rot =
has_translation = false, and a stand-in camera f = 5000 with the principal point at the image centre.

Fields: id, image (the source file's bytes; other than 8-bit RGB: converted, JPEG), K, R, t, landmarks_2d (68,
2), landmarks_visible (68,),
has_rot, has_translation, has_3d.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines.builders import features as F
from data_pipelines.builders.ibug import ibug_mirror

FAKE_FOCAL = 5000.0
FLIP_SUFFIX = "_Flip"


def read_landmarks(path: Path) -> np.ndarray:
    return F.field(F.read_mat(path), "pts_3d", (68, 2), path)


def landmark_path(root: Path, rel: str) -> tuple[Path, bool]:
    """The landmark file of image `rel` and whether the image is a mirrored copy."""
    folder, name = rel.split("/", 1) if "/" in rel else ("", rel)
    flipped = folder.endswith(FLIP_SUFFIX)
    source = folder[: -len(FLIP_SUFFIX)] if flipped else folder
    return root / "landmarks" / source / f"{Path(name).name}_pts.mat", flipped


class W300lp(tfds.core.GeneratorBasedBuilder):
    """300W-LP in the project's conventions (see the module docstring)."""

    name = "w300lp"
    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Download 300W-LP (Zhu et al., "Face Alignment Across Large Poses", CVPR 2016) from the 3DDFA
    project page, and TokenHPE's `files.txt` list (linked from TRG-Release). Pass the `300W_LP`
    folder (with files.txt, the image folders and landmarks/) as --manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return F.dataset_info(
            self,
            __doc__,
            id=tfds.features.Text(), image=F.image_feature("jpeg"), K=F.tensor(3, 3), R=F.tensor(3, 3),
            t=F.tensor(3), landmarks_2d=F.tensor(68, 2), landmarks_visible=F.tensor(68, dtype=np.bool_),
            has_rot=F.scalar_bool(), has_translation=F.scalar_bool(), has_3d=F.scalar_bool(),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        root = Path(dl_manager.manual_dir)
        return {"train": F.unique_ids(self._generate_examples(root), root / "files.txt")}

    def _generate_examples(self, root: Path) -> Iterator[tuple[str, dict]]:
        listing = root / "files.txt"
        if not listing.is_file():
            raise F.SourceError(f"{listing}: the image list is missing")
        rels = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        mirror = ibug_mirror()
        for rel in rels:
            data, (H, W) = F.image_bytes(root / f"{rel}.jpg", "jpeg")
            path, flipped = landmark_path(root, rel)
            lmk = read_landmarks(path)
            if flipped:
                lmk = np.stack([W - 1 - lmk[mirror, 0], lmk[mirror, 1]], 1)
            K = np.array([[FAKE_FOCAL, 0, W / 2], [0, FAKE_FOCAL, H / 2], [0, 0, 1.0]], np.float32)
            yield rel, dict(
                id=rel, image=data, K=K, R=np.eye(3, dtype=np.float32), t=np.zeros(3, np.float32),
                landmarks_2d=lmk.astype(np.float32), landmarks_visible=np.ones(68, bool),
                has_rot=False, has_translation=False, has_3d=False,
            )
        print(f"w300lp: {len(rels)} examples", file=sys.stderr)
