"""A third model plugs in through the registries alone: a tiny fake network and task, registered
here, train, evaluate and predict through the generic loop and CLIs' functions.

The fake model regresses the head rotation from a 32 px crop of the synthetic heads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from configs import trg as trg_configs
from jaxhead import visualize
from jaxhead.models import register_model
from jaxhead.tasks import PhotoResult, register_task

SIZE = 32


@register_model("fake_rotation")
class FakeRotationNet(nnx.Module):
    def __init__(self, cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
        self.conv = nnx.Conv(3, cfg.width, (3, 3), strides=(2, 2), rngs=rngs)
        self.bn = nnx.BatchNorm(cfg.width, rngs=rngs)
        self.head = nnx.Linear(cfg.width, 9, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = jax.nn.relu(self.bn(self.conv(x)))
        return self.head(h.mean(axis=(1, 2))).reshape(-1, 3, 3)


def _crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    patch = Image.fromarray(np.asarray(image, np.uint8)).crop((x0, y0, x1, y1)).resize((SIZE, SIZE))
    return np.asarray(patch, np.float32) / 255.0 - 0.5


class FakeTransform:
    def __call__(self, example: dict, rng: np.random.Generator | None) -> dict:
        H, W = example["image"].shape[:2]
        return dict(image=_crop(example["image"], np.array([0, 0, W, H])),
                    R=np.asarray(example["R"], np.float32), id=example["id"])


@register_task("fake_rotation")
class FakeRotationTask:
    name = "fake_rotation"
    input_keys = ("image",)
    best_metric = "rot_err"
    best_mode = "min"
    uses_intrinsics = False

    def __init__(self, config: ml_collections.ConfigDict):
        self.config = config
        self.mean_R = np.eye(3)

    def transform(self) -> FakeTransform:
        return FakeTransform()

    def augment(self, batch: dict[str, jax.Array], key: jax.Array) -> dict[str, jax.Array]:
        return batch

    def model_buffers(self) -> dict[str, np.ndarray]:
        return {}

    def loss(self, model: nnx.Module, batch: dict[str, jax.Array]) -> tuple[jax.Array, dict[str, jax.Array]]:
        err = jnp.mean((model(batch["image"]).astype(jnp.float32) - batch["R"]) ** 2)
        return err, {"mse": err}

    def predict(self, model: nnx.Module, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        return {"R": model(batch["image"])}

    def evaluate(self, predictions: dict[str, np.ndarray], batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"rot_err": np.abs(np.asarray(predictions["R"]) - np.asarray(batch["R"])).mean(axis=(1, 2))}

    def summarize(self, per_sample: dict[str, np.ndarray]) -> dict[str, float]:
        return {k: float(np.mean(v)) for k, v in per_sample.items()}

    def fit_baseline(self, batches: Iterable[dict[str, np.ndarray]]) -> None:
        Rs = [np.asarray(b["R"]) for b in batches]
        if Rs:
            self.mean_R = np.concatenate(Rs).mean(axis=0)

    def baseline(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"R": np.broadcast_to(self.mean_R, (len(batch["R"]), 3, 3))}

    def draw(self, batch: dict[str, np.ndarray], predictions: dict[str, np.ndarray], path: Path) -> None:
        fig, axes = visualize.image_grid(len(batch["image"]))
        for ax, image in zip(axes, batch["image"]):
            visualize.show_image(ax, np.clip(image + 0.5, 0, 1))
        visualize.save_figure(fig, path)

    def draw_example(self, ax: Any, batch: dict[str, np.ndarray], i: int) -> None:
        visualize.show_image(ax, np.clip(batch["image"][i] + 0.5, 0, 1))

    def photo_inputs(self, image: np.ndarray, box: np.ndarray, K: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
        return {"image": _crop(image, box)[None]}, {"box": box}

    def photo_outputs(self, predictions: dict[str, np.ndarray], context: dict) -> PhotoResult:
        corners = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
        return PhotoResult({"R": np.asarray(predictions["R"][0]).tolist()}, corners, {"box": context["box"]})

    def mesh_faces(self) -> np.ndarray:
        return np.array([[0, 1, 2]])

    def draw_photo(self, ax: Any, result: PhotoResult) -> None:
        x0, y0, x1, y1 = result.drawing["box"]
        ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="yellow")


def _config(data_dir: Path) -> ml_collections.ConfigDict:
    config = trg_configs.get_config("smoke")
    config.model = ml_collections.ConfigDict(dict(name="fake_rotation", width=8, img_size=SIZE))
    config.data.data_dir = str(data_dir)
    config.data.num_workers = 0
    config.data.device_augment = False  # the fake task augments nothing, on the host or the device
    config.train.num_steps = 4
    config.train.eval_every_steps = 2
    return config


@pytest.mark.slow
def test_a_registered_model_trains_evaluates_and_predicts(synthetic_tiny: Path, tmp_path: Path) -> None:
    from jaxhead.evaluate import evaluate
    from jaxhead.predict import predict
    from jaxhead.train import train

    workdir = tmp_path / "run"
    summary = train(_config(synthetic_tiny), workdir)
    assert set(summary) == {"rot_err"} and np.isfinite(summary["rot_err"])
    report = json.loads((workdir / "eval" / "test.json").read_text())
    assert report["model"]["rot_err"] == pytest.approx(summary["rot_err"]) and report["num_examples"] == 32

    result = evaluate(workdir)
    assert result["summary"]["rot_err"] == pytest.approx(summary["rot_err"], rel=1e-5)

    image = tmp_path / "photo.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(image)
    (written,) = predict(workdir, [str(image)], tmp_path / "pred", box="8,8,56,56")
    values = json.loads(written.read_text())
    assert values["model"] == "fake_rotation" and np.asarray(values["R"]).shape == (3, 3)
    assert (tmp_path / "pred" / "photo.obj").is_file() and (tmp_path / "pred" / "photo.png").is_file()
