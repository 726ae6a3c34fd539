"""dad3dheads builder on a fixture in the official layout (OpenGL MV / P, image-y flip)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.data_pipelines.fixture_truth import F, build, pinhole, posed_head, truncate, write_image

H, W = 48, 64
GL = np.diag([1.0, -1.0, -1.0, 1.0])


def gl_matrices(R: np.ndarray, t: np.ndarray, fx: float, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    mv = np.eye(4)
    mv[:3, :3], mv[:3, 3] = R @ F, t
    mv = GL @ mv
    P = np.zeros((4, 4))
    P[0, 0], P[0, 2], P[1, 1], P[1, 2], P[3, 2] = fx, -cx, fx, -(H - cy), -1.0
    P[2, 2], P[2, 3] = -1.002, -0.02
    return mv, P


def official_pixels(v: np.ndarray, mv: np.ndarray, P: np.ndarray) -> np.ndarray:
    clip = np.c_[v, np.ones(len(v))] @ (P @ mv).T
    return np.stack([clip[:, 0] / clip[:, 3], H - clip[:, 1] / clip[:, 3]], 1)


def write_fixture(root: Path, n: int = 2) -> dict[str, dict]:
    truth = {}
    for split in ("train", "val", "test"):
        items = []
        for i in range(n):
            item_id = f"{split}_{i:03d}"
            write_image(root / split / "images" / f"{item_id}.png", (H, W), i)
            item = dict(item_id=item_id, img_path=f"{split}/images/{item_id}.png", bbox=[5.0, 4.0, 30.0, 36.0])
            if split != "test":
                g = posed_head(i)
                mv, P = gl_matrices(g["R"], g["t"], 60.0 + i, 31.0, 25.0)
                ann = root / split / "annotations" / f"{item_id}.json"
                ann.parent.mkdir(parents=True, exist_ok=True)
                ann.write_text(json.dumps(dict(vertices=g["vertices"].tolist(), model_view_matrix=mv.tolist(), projection_matrix=P.tolist())))
                item["annotation_path"] = f"annotations/{item_id}.json"  # relative to the split folder
                truth[item_id] = dict(vertices=g["vertices"], mv=mv, P=P)
            if split == "train":
                item["attributes"] = {"pose": "front", "standard light": True}
            items.append(item)
        (root / split / f"{split}.json").write_text(json.dumps(items))
    return truth


def test_builds_and_converts(tmp_path: Path) -> None:
    truth = write_fixture(tmp_path / "src")
    data = build("dad3dheads", tmp_path / "src", tmp_path / "data")
    assert {s: len(v) for s, v in data.items()} == {"train": 2, "val": 2, "test": 2}
    for split in ("train", "val"):
        for item_id, ex in data[split].items():
            tr = truth[item_id]
            np.testing.assert_allclose(ex["vertices"], tr["vertices"], atol=1e-6)
            expected = official_pixels(tr["vertices"], tr["mv"], tr["P"])
            np.testing.assert_allclose(pinhole(ex["K"], ex["R"], ex["t"], tr["vertices"] @ F), expected, atol=1e-2)
            np.testing.assert_allclose(ex["head_box"], [5, 4, 35, 40])
            assert list(ex["image_hw"]) == [H, W] and ex["has_3d"]
    attrs = json.loads(next(iter(data["train"].values()))["attributes"])
    assert attrs == {"pose": "front", "standard light": True}
    assert json.loads(next(iter(data["val"].values()))["attributes"]) == {}
    assert not any(ex["has_3d"] for ex in data["test"].values())


def _first_annotation(root: Path) -> Path:
    return sorted((root / "train" / "annotations").glob("*.json"))[0]


def _drop_vertices(root: Path) -> None:
    path = _first_annotation(root)
    ann = json.loads(path.read_text())
    del ann["vertices"]
    path.write_text(json.dumps(ann))


def _nan_pose(root: Path) -> None:
    path = _first_annotation(root)
    ann = json.loads(path.read_text())
    ann["model_view_matrix"][0][3] = float("nan")
    path.write_text(json.dumps(ann).replace("NaN", "NaN"))


def _edit_item(root: Path, **fields) -> None:
    path = root / "train" / "train.json"
    items = json.loads(path.read_text())
    items[0].update(fields)
    path.write_text(json.dumps(items))


def _repeat_item(root: Path) -> None:
    path = root / "train" / "train.json"
    items = json.loads(path.read_text())
    path.write_text(json.dumps(items + items[:1]))


def _edit_annotation(root: Path, **fields) -> None:
    path = root / "train" / "annotations" / "train_000.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda r: truncate(r / "train" / "images" / "train_000.png"), r"train_000\.png: not a readable image"),
        (_drop_vertices, r"train_000\.json: missing field 'vertices'"),
        (_nan_pose, r"train_000\.json: field 'model_view_matrix' holds NaN"),
        (lambda r: _edit_item(r, bbox=[5.0, 4.0, 0.0, 36.0]), r"train\.json item 0: bbox \[x, y, w, h\] .* is empty"),
        (lambda r: _edit_annotation(r, model_view_matrix=np.zeros((4, 4)).tolist()),
         r"train_000\.json: model_view_matrix\[:3, :3\] is degenerate"),
        (lambda r: _edit_annotation(r, projection_matrix=np.zeros((4, 4)).tolist()),
         r"train_000\.json: the camera of projection_matrix .* is degenerate"),
        (lambda r: (r / "val" / "val.json").unlink(), r"split file\(s\) missing: .*val\.json"),
        (_repeat_item, r"train\.json: example id 'train/train_000' appears twice"),
    ],
)
def test_bad_sources_stop_the_build(tmp_path: Path, corrupt, message: str) -> None:
    write_fixture(tmp_path / "src", n=1)
    corrupt(tmp_path / "src")
    with pytest.raises(Exception, match=message):
        build("dad3dheads", tmp_path / "src", tmp_path / "data")
