"""End to end on the tiny synthetic build: train (smoke) -> evaluate -> predict, for both models;
exact resume after SIGKILL; config variants and command-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from flax import nnx

from jaxhead import checkpoint

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _train_args(config: str, workdir: Path, data_dir: Path, *overrides: str) -> list[str]:
    return ["-m", "jaxhead.train", f"--config=configs/{config}", f"--workdir={workdir}",
            f"--config.data.data_dir={data_dir}", *overrides]


def _face_image(data_dir: Path, path: Path) -> Path:
    import tensorflow_datasets as tfds
    from PIL import Image

    import data_pipelines.builders.synthetic_heads  # noqa: F401  (registers the builder)

    Image.fromarray(tfds.data_source("synthetic_heads/tiny", data_dir=str(data_dir))["test"][0]["image"]).save(path)
    return path


@pytest.mark.parametrize("model", ["trg", "dad3dnet"])
def test_train_evaluate_predict(model: str, synthetic_tiny: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    r = _run(_train_args(f"{model}.py:smoke", workdir, synthetic_tiny))
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ("metrics.jsonl", "curves.png", "predictions.png", "config.json", "eval/test.json"):
        assert (workdir / name).is_file(), name
    final = json.loads((workdir / "eval" / "test.json").read_text())
    assert final["num_examples"] == 32
    assert all(np.isfinite(v) for v in final["model"].values() if isinstance(v, float))

    r = _run(["-m", "jaxhead.evaluate", f"--workdir={workdir}", "--split=test_ood"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert (workdir / "eval" / "synthetic_heads_test_ood.md").is_file()
    ood = json.loads((workdir / "eval" / "synthetic_heads_test_ood.json").read_text())
    assert ood["num_examples"] == 32 and ood["model"] != final["model"]

    image = _face_image(synthetic_tiny, tmp_path / "face.png")
    out = tmp_path / "pred"
    r = _run(["-m", "jaxhead.predict", f"--workdir={workdir}", str(image), f"--out={out}", "--box=30,20,100,100"])
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads((out / "face.json").read_text())
    import trimesh

    mesh = trimesh.load(out / "face.obj", process=False)
    assert (out / "face.png").stat().st_size > 5000
    if model == "trg":
        assert "no intrinsics given" in r.stderr
        assert np.asarray(result["vertices_cam"]).shape == (1220, 3) and len(mesh.vertices) == 1220
        R = np.asarray(result["R"])
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-4)
    else:
        assert np.asarray(result["landmarks_68"]).shape == (68, 2)
        assert set(result["flame_params"]) >= {"shape", "expression", "jaw"}


def _params(workdir: Path) -> dict:
    model, _, step = checkpoint.load_model(workdir)
    return step, nnx.to_pure_dict(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat)))


def test_exact_resume_after_sigkill(synthetic_tiny: Path, tmp_path: Path) -> None:
    common = ("--config.train.num_steps=30", "--config.train.checkpoint_every=5",
              "--config.train.eval_every_steps=1000", "--config.train.log_every=5")
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, *_train_args("trg.py:smoke", killed, synthetic_tiny, *common)],
        cwd=REPO, env=dict(os.environ, JAX_PLATFORMS="cpu"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "5").is_dir():
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    steps = sorted(int(p.name) for p in (killed / "checkpoints").iterdir() if p.name.isdigit())
    assert steps and steps[-1] < 30, f"the run was not interrupted (checkpoints {steps})"

    r = _run(_train_args("trg.py:smoke", killed, synthetic_tiny, *common))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resum" in r.stderr.lower()
    straight = tmp_path / "straight"
    r = _run(_train_args("trg.py:smoke", straight, synthetic_tiny, *common))
    assert r.returncode == 0, r.stderr[-3000:]

    (step_a, a), (step_b, b) = _params(killed), _params(straight)
    assert step_a == step_b == 30
    flat_a, flat_b = dict(nnx.traversals.flatten_mapping(a)), dict(nnx.traversals.flatten_mapping(b))
    assert flat_a.keys() == flat_b.keys()
    for k in flat_a:
        np.testing.assert_array_equal(np.asarray(flat_a[k]), np.asarray(flat_b[k]), err_msg=str(k))


@pytest.mark.parametrize("config", ["trg.py", "dad3dnet.py"])
def test_config_variants_parse(config: str) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("cfg", REPO / "configs" / config)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for variant in module.VARIANTS:
        cfg = module.get_config(variant)
        assert cfg.model.img_size == cfg.data.img_size
        assert cfg.data.batch_size > 0
    with pytest.raises(ValueError, match="unknown"):
        module.get_config("nope")


@pytest.mark.parametrize(
    "override, message",
    [("--config.train.no_such_key=1", "no_such_key"), ("--config.train.num_steps=abc", "num_steps")],
)
def test_bad_overrides_fail_at_parse_time(override: str, message: str, tmp_path: Path) -> None:
    r = _run(["-m", "jaxhead.train", "--config=configs/trg.py:smoke", f"--workdir={tmp_path}", override], timeout=120)
    assert r.returncode != 0 and message in r.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_predict_rejects_bad_inputs(tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    r = _run(["-m", "jaxhead.predict", f"--workdir={tmp_path}", str(bad), f"--out={tmp_path / 'o'}"], timeout=120)
    assert r.returncode != 0 and "notes.png: not a readable image" in r.stderr
    from PIL import Image

    good = tmp_path / "ok.png"
    Image.new("RGB", (32, 32)).save(good)
    r = _run(["-m", "jaxhead.predict", f"--workdir={tmp_path}", str(good), "--K=500,500,16", f"--out={tmp_path / 'o'}"], timeout=120)
    assert r.returncode != 0 and "--K='500,500,16'" in r.stderr and "fx,fy,cx,cy" in r.stderr
