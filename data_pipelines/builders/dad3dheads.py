"""`dad3dheads`: DAD-3DHeads, read as the official loader reads it (spec dad3dnet.md §8).

Source layout under --manual_dir (the `DAD-3DHeadsDataset` folder):
  {train,val,test}/{split}.json           list of {item_id, annotation_path, img_path, bbox [x, y, w, h], attributes}
  {train,val,test}/images/<ID>.png
  {train,val}/annotations/<ID>.json       {vertices (N, 3) FLAME model space, model_view_matrix, projection_matrix}

`img_path` / `annotation_path` are resolved against the dataset root, then against the split folder
(their exact stored prefix is not documented). The test split has no annotations: its examples carry
the image and box with has_3d false and zero arrays. `val.json` has no attributes.

Conversions (docs/conventions.md): MV and P are kept as stored and also turned into the OpenCV pose:
R = diag(1,-1,-1) MV[:3,:3] F, t = diag(1,-1,-1) MV[:3,3] (F = diag(1,-1,-1)), and K from P
(fx = P00, cx = -P02, fy = P11, cy = H + P12), so that K (R F v + t) lands where the official
`clip = P MV [v; 1]`, (x/w, H - y/w) path puts vertex v.

Fields: id, image (the source file's bytes; other than 8-bit RGB: converted, PNG), vertices (N, 3) (FLAME: N =
5023; the same N within a split), model_view_matrix, projection_matrix, K, R, t,
head_box [l, t, r, b], image_hw, attributes (JSON text), has_3d, has_rot, has_translation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines.builders import features as F

FLIP = np.diag([1.0, -1.0, -1.0])
SPLITS = ("train", "val", "test")
META_KEYS = ("item_id", "img_path", "bbox")


def pose_from_opengl(mv: np.ndarray, P: np.ndarray, height: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K (3, 3), R (3, 3), t (3,)) in OpenCV form from DAD-3DHeads' MV and P."""
    R = FLIP @ mv[:3, :3] @ FLIP
    t = FLIP @ mv[:3, 3]
    K = np.array([[P[0, 0], 0.0, -P[0, 2]], [0.0, P[1, 1], height + P[1, 2]], [0.0, 0.0, 1.0]])
    return K, R, t


def split_file(root: Path, split: str) -> Path:
    return root / split / f"{split}.json"


def resolve(root: Path, split: str, rel: str, where: Path, key: str) -> Path:
    for base in (root, root / split):
        if (base / rel).is_file():
            return base / rel
    raise F.SourceError(f"{where}: {key} {rel!r} not found under {root} or {root / split}")


class Dad3dheads(tfds.core.GeneratorBasedBuilder):
    """DAD-3DHeads in the project's conventions (see the module docstring)."""

    name = "dad3dheads"
    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Request DAD-3DHeads at https://www.pinatafarm.com/research/dad-3dheads (institutional e-mail;
    CC BY-NC-SA 4.0 terms). Pass the extracted `DAD-3DHeadsDataset` folder (with train/, val/ and
    test/) as --manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return F.dataset_info(
            self,
            __doc__,
            id=tfds.features.Text(), image=F.image_feature("png"), vertices=tfds.features.Tensor(shape=(None, 3), dtype=np.float32),
            model_view_matrix=F.tensor(4, 4), projection_matrix=F.tensor(4, 4), K=F.tensor(3, 3),
            R=F.tensor(3, 3), t=F.tensor(3), head_box=F.tensor(4), image_hw=F.tensor(2, dtype=np.int32),
            attributes=tfds.features.Text(), has_3d=F.scalar_bool(), has_rot=F.scalar_bool(),
            has_translation=F.scalar_bool(),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        root = Path(dl_manager.manual_dir)
        missing = [str(split_file(root, s)) for s in SPLITS if not split_file(root, s).is_file()]
        if missing:
            raise F.SourceError(f"{root}: split file(s) missing: {missing}; expected {{train,val,test}}/<split>.json")
        return {split: F.unique_ids(self._generate_examples(root, split), split_file(root, split)) for split in SPLITS}

    def _generate_examples(self, root: Path, split: str) -> Iterator[tuple[str, dict]]:
        meta_path = split_file(root, split)
        items = F.read_json(meta_path)
        if not isinstance(items, list):
            raise F.SourceError(f"{meta_path}: expected a list of items")
        V: int | None = None  # FLAME has 5023; any count works, but one per split
        for i, item in enumerate(items):
            where = f"{meta_path} item {i}"
            missing = [k for k in META_KEYS if k not in item]
            if missing:
                raise F.SourceError(f"{where}: missing field(s) {missing}")
            image_path = resolve(root, split, item["img_path"], meta_path, "img_path")
            data, (H, W) = F.image_bytes(image_path, "png")
            x, y, w, h = F.field(item, "bbox", (4,), where)
            F.check_box([x, y, x + w, y + h], where, "bbox [x, y, w, h]")
            has_3d = split != "test" and bool(item.get("annotation_path"))
            vertices, mv, P = np.zeros((V or 0, 3)), np.eye(4), np.eye(4)
            K, R, t = np.eye(3), np.eye(3), np.zeros(3)
            if has_3d:
                ann_path = resolve(root, split, item["annotation_path"], meta_path, "annotation_path")
                ann = F.read_json(ann_path)
                vertices = F.field(ann, "vertices", (V, 3), ann_path)
                V = len(vertices)
                mv = F.field(ann, "model_view_matrix", (4, 4), ann_path)
                P = F.field(ann, "projection_matrix", (4, 4), ann_path)
                F.check_linear(mv[:3, :3], ann_path, "model_view_matrix[:3, :3]")
                K, R, t = pose_from_opengl(mv, P, H)
                F.check_intrinsics(K, ann_path, "the camera of projection_matrix")
            f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
            key = f"{split}/{item['item_id']}"
            yield key, dict(
                id=str(item["item_id"]), image=data, vertices=f32(vertices), model_view_matrix=f32(mv),
                projection_matrix=f32(P), K=f32(K), R=f32(R), t=f32(t), head_box=f32([x, y, x + w, y + h]),
                image_hw=np.array([H, W], np.int32), attributes=json.dumps(item.get("attributes") or {}),
                has_3d=has_3d, has_rot=has_3d, has_translation=has_3d,
            )
        print(f"dad3dheads {split}: {len(items)} examples", file=sys.stderr)
