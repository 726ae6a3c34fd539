"""w300lp builder on a fixture in the official layout (files.txt, pts_3d .mat, _Flip images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from data_pipelines.builders.ibug import ibug_mirror
from tests.data_pipelines.fixture_truth import build, truncate, write_image

H, W = 48, 64


def write_fixture(root: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    truth = {}
    rels = []
    for i, folder in enumerate(("AFW", "HELEN")):
        name = f"{folder}_{i}_1_0"
        pts = rng.uniform(5, 40, (68, 2))
        (root / "landmarks" / folder).mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / "landmarks" / folder / f"{name}_pts.mat", {"pts_3d": pts})
        write_image(root / folder / f"{name}.jpg", (H, W), i)
        write_image(root / f"{folder}_Flip" / f"{name}.jpg", (H, W), i + 5)
        rels += [f"{folder}/{name}", f"{folder}_Flip/{name}"]
        truth[f"{folder}/{name}"] = pts
        truth[f"{folder}_Flip/{name}"] = pts
    (root / "files.txt").write_text("\n".join(rels) + "\n")
    return truth


def test_mirror_is_an_involution() -> None:
    m = ibug_mirror()
    np.testing.assert_array_equal(m[m], np.arange(68))
    assert m[0] == 16 and m[36] == 45 and m[30] == 30 and m[48] == 54


def test_builds_and_mirrors_flipped_images(tmp_path: Path) -> None:
    truth = write_fixture(tmp_path / "src")
    data = build("w300lp", tmp_path / "src", tmp_path / "data")["train"]
    assert len(data) == 4
    m = ibug_mirror()
    for rel, ex in data.items():
        pts = truth[rel]
        expected = np.stack([W - 1 - pts[m, 0], pts[m, 1]], 1) if "_Flip/" in rel else pts
        np.testing.assert_allclose(ex["landmarks_2d"], expected, atol=1e-4)
        assert not ex["has_3d"] and not ex["has_rot"]
        np.testing.assert_allclose(ex["K"], [[5000, 0, W / 2], [0, 5000, H / 2], [0, 0, 1]])


def _nan_landmarks(root: Path) -> None:
    path = root / "landmarks" / "AFW" / "AFW_0_1_0_pts.mat"
    pts = scipy.io.loadmat(path)["pts_3d"]
    pts[3, 0] = np.nan
    scipy.io.savemat(path, {"pts_3d": pts})


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda r: truncate(r / "AFW" / "AFW_0_1_0.jpg"), r"AFW_0_1_0\.jpg: not a readable image"),
        (lambda r: scipy.io.savemat(r / "landmarks" / "AFW" / "AFW_0_1_0_pts.mat", {"pts_2d": np.zeros((68, 2))}),
         r"AFW_0_1_0_pts\.mat: missing field 'pts_3d'"),
        (_nan_landmarks, r"AFW_0_1_0_pts\.mat: field 'pts_3d' holds NaN"),
        (lambda r: (r / "files.txt").write_text((r / "files.txt").read_text() * 2),
         r"files\.txt: example id .* appears twice"),
    ],
)
def test_bad_sources_stop_the_build(tmp_path: Path, corrupt, message: str) -> None:
    write_fixture(tmp_path / "src")
    corrupt(tmp_path / "src")
    with pytest.raises(Exception, match=message):
        build("w300lp", tmp_path / "src", tmp_path / "data")
