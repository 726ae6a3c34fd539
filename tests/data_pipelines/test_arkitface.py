"""arkitface builder on a fixture in the official layout (row-vector OpenGL R_t, anchor-frame verts)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.data_pipelines.fixture_truth import F, build, pinhole, posed_head, truncate, write_image

H, W = 48, 64
PROJ = np.array([[1.57443701, 0, 0, 0], [0, 1.57443701, 0, 0], [0, 0, -0.99999976, -1], [0, 0, -0.001, 0]])


def write_fixture(root: Path, n: int = 3) -> dict[str, dict]:
    truth = {}
    for split in ("train", "test"):
        rows = []
        for i in range(n):
            g = posed_head(i + (10 if split == "test" else 0))
            sid, action, img = f"{split}{i}", "smile", f"{i:04d}"
            R_gl, t_gl = F @ g["R"] @ F, F @ g["t"]
            M = np.eye(4)
            M[:3, :3], M[:3, 3] = R_gl, t_gl
            verts = g["vertices"][g["face_region"]]  # ARKit anchor frame = the model frame
            label = root / f"ARKitFace_info_{split}" / "info" / sid / action / f"{img}_info.npz"
            label.parent.mkdir(parents=True, exist_ok=True)
            np.savez(label, verts=verts, R_t=M.T)  # row-vector storage
            write_image(root / f"ARKitFace_image_{split}" / "image" / sid / action / f"{img}_ar.jpg", (H, W), i)
            rows.append(dict(subject_id=sid, facial_action=action, img_id=img, extra="x"))
            truth[f"{split}/{sid}/{action}/{img}"] = dict(verts=verts, M=M)
        path = root / "ARKitFace_list" / "list" / f"ARKitFace_{split}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return truth


def official_pixels(verts: np.ndarray, M: np.ndarray) -> np.ndarray:
    """The official path: [v, 1] @ R_t (row vectors, OpenGL), @ projection, NDC -> pixels."""
    clip = np.c_[verts, np.ones(len(verts))] @ M.T @ PROJ  # PROJ is stored in row-vector form
    ndc = clip[:, :2] / clip[:, 3:]
    return np.stack([(ndc[:, 0] + 1) / 2 * W, (1 - ndc[:, 1]) / 2 * H], 1)


def test_builds_and_converts(tmp_path: Path) -> None:
    truth = write_fixture(tmp_path / "src")
    data = build("arkitface", tmp_path / "src", tmp_path / "data")
    assert {s: len(v) for s, v in data.items()} == {"train": 3, "test": 3}
    for split in data.values():
        for key, ex in split.items():
            tr = truth[key]
            np.testing.assert_allclose(ex["face_vertices"], tr["verts"] @ F, atol=1e-6)
            np.testing.assert_allclose(ex["R"] @ ex["R"].T, np.eye(3), atol=1e-5)
            np.testing.assert_allclose(
                pinhole(ex["K"], ex["R"], ex["t"], ex["face_vertices"]), official_pixels(tr["verts"], tr["M"]), atol=1e-2
            )
            assert ex["image"].shape == (H, W, 3) and ex["has_3d"]


def _listed_twice(root: Path) -> None:
    path = root / "ARKitFace_list" / "list" / "ARKitFace_train.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + lines[1:]) + "\n")


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda r: truncate(next(r.rglob("*_ar.jpg"))), r"_ar\.jpg: not a readable image"),
        (lambda r: np.savez(next(r.rglob("*_info.npz")), R_t=np.eye(4)), r"_info\.npz: missing field 'verts'"),
        (lambda r: np.savez(next(r.rglob("*_info.npz")), verts=np.zeros((1220, 3)), R_t=np.full((4, 4), np.nan)),
         r"_info\.npz: field 'R_t' holds NaN"),
        (lambda r: np.savez(next(r.rglob("*_info.npz")), verts=np.zeros((1220, 3)), R_t=np.zeros((4, 4))),
         r"_info\.npz: R_t\[:3, :3\] is not a rotation"),
        (_listed_twice, r"ARKitFace_train\.csv: example id .* appears twice"),
    ],
)
def test_bad_sources_stop_the_build(tmp_path: Path, corrupt, message: str) -> None:
    write_fixture(tmp_path / "src", n=1)
    corrupt(tmp_path / "src")
    with pytest.raises(Exception, match=message):
        build("arkitface", tmp_path / "src", tmp_path / "data")
    assert not list((tmp_path / "data").rglob("dataset_info.json"))
