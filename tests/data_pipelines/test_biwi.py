"""biwi builder on a fixture in the official layout (rgb.cal, pose files in mm, the FAN pickle)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from tests.data_pipelines.fixture_truth import build, pinhole, truncate, write_image

H, W = 48, 64


def _fmt(rows: np.ndarray) -> str:
    return "\n".join(" ".join(f"{x:.9f}" for x in row) for row in np.atleast_2d(rows))


def write_fixture(root: Path, frames: int = 2, orphan: bool = True) -> dict:
    rng = np.random.default_rng(0)
    K = np.array([[60.0, 0, 31], [0, 61, 24], [0, 0, 1]])
    R_ext = Rotation.from_euler("xyz", [2, -3, 1], degrees=True).as_matrix()
    T_ext = np.array([20.0, -5.0, 3.0])
    subject = root / "01"
    subject.mkdir(parents=True)
    (subject / "rgb.cal").write_text(
        f"{_fmt(K)}\n\n0 0 0 0\n\n{_fmt(R_ext)}\n\n{_fmt(T_ext)}\n\n{W} {H}\n"
    )
    template = rng.normal(0, 60, (6918, 3))  # mm
    truth, paths, kpts = {}, [], {}
    for i in range(frames + int(orphan)):
        rel = f"01/frame_{i:05d}_rgb.png"
        paths.append(rel)
        kpts[rel] = rng.uniform(0, 40, (68, 3))
        write_image(root / rel, (H, W), i)
        if i == frames:  # listed but without a pose file: skipped, as the official list would not hold it
            continue
        R_head = Rotation.from_euler("yxz", rng.uniform(-30, 30, 3), degrees=True).as_matrix()
        T_head = np.array([rng.uniform(-50, 50), rng.uniform(-50, 50), rng.uniform(700, 900)])
        (root / rel.replace("_rgb.png", "_pose.txt")).write_text(f"{_fmt(R_head)}\n\n{_fmt(T_head)}\n")
        truth[rel] = dict(R=R_ext @ R_head, t=(R_ext @ T_head + T_ext) / 1000.0, kpt=kpts[rel])
    ann = dict(img_path=paths, mesh={"01": {"vertices": template, "faces": np.zeros((5, 3), np.int64)}}, pred_kpt=kpts)
    (root / "annot_mtcnn_fan.pkl").write_bytes(pickle.dumps(ann, protocol=2))
    return dict(truth=truth, K=K, R_ext=R_ext, T_ext=T_ext, template=template)


def test_builds_and_composes_the_extrinsics(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    fx = write_fixture(tmp_path / "src")
    data = build("biwi", tmp_path / "src", tmp_path / "data")["test"]
    assert sorted(data) == sorted(fx["truth"])
    assert "skipped 1 items (1 frames without a pose file)" in capfd.readouterr().err
    for rel, ex in data.items():
        tr = fx["truth"][rel]
        np.testing.assert_allclose(ex["R"], tr["R"], atol=1e-5)
        np.testing.assert_allclose(ex["t"], tr["t"], atol=1e-5)
        np.testing.assert_allclose(ex["K"], fx["K"], atol=1e-5)
        np.testing.assert_allclose(ex["landmarks_2d"], tr["kpt"][:, :2], atol=1e-4)
        # A template vertex: in mm through the official composition, in metres through ours.
        v_mm = fx["template"][:5]
        cam_mm = v_mm @ tr["R"].T + tr["t"] * 1000.0
        uv = cam_mm[:, :2] / cam_mm[:, 2:] * [fx["K"][0, 0], fx["K"][1, 1]] + fx["K"][:2, 2]
        np.testing.assert_allclose(pinhole(ex["K"], ex["R"], ex["t"], ex["eval_vertices"][:5]), uv, atol=1e-2)


def _bad_pose(root: Path) -> None:
    path = root / "01" / "frame_00000_pose.txt"
    path.write_text(path.read_text().replace(path.read_text().split()[0], "nan", 1))


def _zero_intrinsics(root: Path) -> None:
    cal = root / "01" / "rgb.cal"
    cal.write_text("0 0 0\n0 0 0\n0 0 0\n" + "\n".join(cal.read_text().splitlines()[3:]) + "\n")


def _zero_rotation(root: Path) -> None:
    pose = root / "01" / "frame_00000_pose.txt"
    pose.write_text("0 0 0\n0 0 0\n0 0 0\n" + "\n".join(pose.read_text().splitlines()[3:]) + "\n")


def _listed_twice(root: Path) -> None:
    path = root / "annot_mtcnn_fan.pkl"
    ann = pickle.loads(path.read_bytes())
    ann["img_path"] = ann["img_path"] * 2
    path.write_bytes(pickle.dumps(ann, protocol=2))


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda r: truncate(r / "01" / "frame_00000_rgb.png"), r"frame_00000_rgb\.png: not a readable image"),
        (_bad_pose, r"frame_00000_pose\.txt: lines 1-3 must hold 3 x 3 finite numbers"),
        (lambda r: (r / "01" / "rgb.cal").write_text("1 2 3\n"), r"rgb\.cal: lines 1-3"),
        (_zero_intrinsics, r"rgb\.cal: K \(lines 1-3\) .* is degenerate"),
        (_zero_rotation, r"frame_00000_pose\.txt: R \(lines 1-3\) is not a rotation"),
        (_listed_twice, r"annot_mtcnn_fan\.pkl: example id '01/frame_00000_rgb\.png' appears twice"),
    ],
)
def test_bad_sources_stop_the_build(tmp_path: Path, corrupt, message: str) -> None:
    write_fixture(tmp_path / "src", frames=1, orphan=False)
    corrupt(tmp_path / "src")
    with pytest.raises(Exception, match=message):
        build("biwi", tmp_path / "src", tmp_path / "data")


def test_missing_template_vertices(tmp_path: Path) -> None:
    write_fixture(tmp_path / "src", frames=1, orphan=False)
    path = tmp_path / "src" / "annot_mtcnn_fan.pkl"
    ann = pickle.loads(path.read_bytes())
    del ann["mesh"]["01"]["vertices"]
    path.write_bytes(pickle.dumps(ann))
    with pytest.raises(Exception, match=r"annot_mtcnn_fan\.pkl mesh\['01'\]: missing field 'vertices'"):
        build("biwi", tmp_path / "src", tmp_path / "data")


def test_trg_pipeline_reads_biwi(tmp_path: Path) -> None:
    """BIWI through TRG's test-time preprocessing: box from the FAN landmarks, ADD on the template."""
    from configs import trg as trg_configs
    from transforms import trg_transform  # tests/data_pipelines

    fx = write_fixture(tmp_path / "src", frames=1, orphan=False)
    ex = next(iter(build("biwi", tmp_path / "src", tmp_path / "data")["test"].values()))
    config = trg_configs.get_config(None)
    out = trg_transform(config)(ex, None)
    lmk = ex["landmarks_2d"]
    l, t, r, b = out["bbox_info"][:4]
    assert abs((l + r) / 2 - (lmk[:, 0].min() + lmk[:, 0].max()) / 2) <= 1.0
    assert out["eval_vertices"].shape == (6918, 3) and out["has_3d_vtx"] == 0 and out["has_rot"] == 1
    np.testing.assert_allclose(out["t"], next(iter(fx["truth"].values()))["t"], atol=1e-5)
    assert out["img"].shape == (192, 192, 3)
