"""aflw2000_3d builder on a fixture in the 3DDFA layout (Pose_Para in radians, pt3d_68)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from tests.data_pipelines.fixture_truth import build, truncate, write_image


def write_fixture(root: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    truth = {}
    for i, angles in enumerate([(10.0, -20.0, 5.0), (-30.0, 45.0, -12.0), (120.0, 3.0, 0.0)]):
        stem = f"image{i:05d}"
        pitch, yaw, roll = angles
        pose = np.array([[np.radians(pitch), np.radians(yaw), np.radians(roll), 1.0, 2.0, 3.0, 0.001]])
        pts = np.vstack([rng.uniform(5, 40, (2, 68)), rng.normal(0, 1, (1, 68))])
        root.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / f"{stem}.mat", {"Pose_Para": pose, "pt3d_68": pts})
        write_image(root / f"{stem}.jpg", (48, 64), i)
        truth[stem] = dict(euler=np.array([yaw, pitch, roll]), lmk=pts[:2].T)
    return truth


def test_builds_and_skips_large_poses(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    truth = write_fixture(tmp_path / "src")
    data = build("aflw2000_3d", tmp_path / "src", tmp_path / "data")["test"]
    assert sorted(data) == ["image00000", "image00001"]  # |pitch| = 120 > 99 is skipped
    assert "skipped 1 items" in capfd.readouterr().err
    from scipy.spatial.transform import Rotation

    for stem, ex in data.items():
        np.testing.assert_allclose(ex["euler"], truth[stem]["euler"], atol=1e-4)
        np.testing.assert_allclose(ex["landmarks_2d"], truth[stem]["lmk"], atol=1e-4)
        np.testing.assert_allclose(ex["head_box"], [*truth[stem]["lmk"].min(0), *truth[stem]["lmk"].max(0)], atol=1e-4)
        # R is TRG's 'yxz' composition of (yaw, pitch, roll): scipy's extrinsic 'yxz'.
        np.testing.assert_allclose(Rotation.from_matrix(ex["R"]).as_euler("yxz", degrees=True), truth[stem]["euler"], atol=1e-3)


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda r: truncate(r / "image00000.jpg"), r"image00000\.jpg: not a readable image"),
        (lambda r: scipy.io.savemat(r / "image00000.mat", {"Pose_Para": np.zeros((1, 7))}), r"image00000\.mat: missing field 'pt3d_68'"),
        (lambda r: scipy.io.savemat(r / "image00000.mat", {"Pose_Para": np.full((1, 7), np.nan), "pt3d_68": np.zeros((3, 68))}),
         r"image00000\.mat: field 'Pose_Para' holds NaN"),
        (lambda r: scipy.io.savemat(r / "image00000.mat", {"Pose_Para": np.zeros((1, 7)), "pt3d_68": np.ones((3, 68))}),
         r"image00000\.mat: the landmarks' box .* is empty"),
    ],
)
def test_bad_sources_stop_the_build(tmp_path: Path, corrupt, message: str) -> None:
    write_fixture(tmp_path / "src")
    corrupt(tmp_path / "src")
    with pytest.raises(Exception, match=message):
        build("aflw2000_3d", tmp_path / "src", tmp_path / "data")
