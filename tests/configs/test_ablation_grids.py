"""Every cell of both ablation grids, given as the runner gives it (through the real flag parser),
builds the network and loss the cell names: the switches are read where the model and loss are
built, so a command-line override is enough."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from flame_jax.landmarks import landmarks_68
from jaxhead.losses.dad3dnet import dad3dnet_loss
from jaxhead.models import build_model
from jaxhead.models.dad3dnet_mesh import reprojected_vertices
from jaxhead.tasks import make_task

from test_configs import _parse  # tests/configs

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "experiments" / "ablations"))

import run_grid  # noqa: E402

TRG_GRID = run_grid.load_grid(REPO / "experiments" / "ablations" / "trg_table1.py")
DAD_GRID = run_grid.load_grid(REPO / "experiments" / "ablations" / "dad_table7.py")

# What each TRG cell builds: iterations, multi-scale, which iterations sample the projected mesh
# (the others sample the fixed grid), whether it predicts a face (and so has a landmark head), and
# the parameter that translation comes from.
TRG_EXPECTED = {
    "1iter_wo_ms": (1, False, [False], True, "correction"),
    "2iter_wo_ms": (2, False, [False, True], True, "correction"),
    "3iter_wo_ms": (3, False, [False, True, True], True, "correction"),
    "t_prediction": (3, True, [False, True, True], True, "translation"),
    "landmark_free": (3, True, [False, False, False], False, "correction"),
    "grid_sampled": (3, True, [False, False, False], True, "correction"),
    "trg": (3, True, [False, True, True], True, "correction"),
}
# The loss terms of each DAD-3DNet row (Table 7 is cumulative) and where its 68 landmarks come from.
DAD_EXPECTED = {
    "row1": ({"heatmap", "reprojection_68"}, "mesh"),
    "row2": ({"heatmap", "reprojection_68", "reprojection"}, "mesh"),
    "row3": ({"heatmap", "reprojection_68", "reprojection"}, "mesh"),
    "row4": ({"heatmap", "reprojection_68", "reprojection", "vertices_3d"}, "mesh"),
    "row5": ({"heatmap", "reprojection_68", "reprojection", "vertices_3d", "landmarks"}, "head"),
}


def _cell_config(grid: dict, cell: str):
    config = grid["config"].removeprefix("configs/")
    return _parse(config, *run_grid.override_args(grid["grid"][cell]["overrides"]))


def test_the_grids_cover_exactly_the_expected_cells() -> None:
    assert list(TRG_GRID["grid"]) == list(TRG_EXPECTED)
    assert list(DAD_GRID["grid"]) == list(DAD_EXPECTED)


@pytest.mark.parametrize("cell", list(TRG_EXPECTED))
def test_trg_cell_builds_what_it_says(cell: str) -> None:
    config = _cell_config(TRG_GRID, cell)
    iterations, multi_scale, mesh, face, tail = TRG_EXPECTED[cell]
    task = make_task(config)
    model = build_model(config, rngs=nnx.Rngs(0), **task.model_buffers())
    assert (model.num_iterations, model.multi_scale) == (iterations, multi_scale)
    assert [model._samples_mesh(i) for i in range(model.num_iterations)] == mesh
    assert model.predict_face == face and (model.landmark_head is not None) == face
    assert (model.variant == "t_prediction") == (tail == "translation")
    # The initial pose's tail: correction parameters (1, 0, 0) or a translation in metres.
    init_tail = np.asarray(model.init_pose[...])[6:]
    assert (init_tail[0] == 1.0 and not init_tail[1:].any()) == (tail == "correction")
    # Every cell shares the schedule and the evaluation splits.
    assert (config.train.num_steps, tuple(config.eval.extra_splits)) == (
        _cell_config(TRG_GRID, "trg").train.num_steps, ("test_ood",))


def _fake_outputs_and_batch(flame, size: float, B: int = 2):
    rng = np.random.default_rng(0)
    V = flame.v_template.shape[0]
    outputs = dict(
        heatmap_logits=rng.normal(size=(B, 32, 32, 68)).astype(np.float32),
        params_3dmm=(0.1 * rng.normal(size=(B, 413))).astype(np.float32),
        landmarks=rng.uniform(size=(B, 68, 2)).astype(np.float32),
    )
    batch = dict(
        heatmap=rng.uniform(size=(B, 32, 32, 68)).astype(np.float32),
        landmarks=rng.uniform(size=(B, 68, 2)).astype(np.float32),
        presence=np.ones((B, 68), np.float32),
        vertices_2d=rng.uniform(0, size, size=(B, V, 2)).astype(np.float32),
        vertices=(0.1 * rng.normal(size=(B, V, 3))).astype(np.float32),
        image=np.zeros((B, 8, 8, 3), np.float32),
    )
    return outputs, batch


@pytest.mark.parametrize("cell", list(DAD_EXPECTED))
def test_dad_cell_builds_what_it_says(cell: str) -> None:
    config = _cell_config(DAD_GRID, cell)
    terms_expected, landmark_source = DAD_EXPECTED[cell]
    task = make_task(config)
    outputs, batch = _fake_outputs_and_batch(task.flame, task.size)
    _, terms = jax.jit(lambda o, b: dad3dnet_loss(task.loss_config, task.flame, o, b))(outputs, batch)
    assert set(terms) == terms_expected
    # The task's loss is the same function of the same resolved config.
    _, task_terms = task.loss(lambda image: outputs, batch)
    assert set(task_terms) == terms_expected
    predicted = np.asarray(task.predict(lambda image: outputs, batch)["landmarks"])
    if landmark_source == "head":
        np.testing.assert_allclose(predicted, outputs["landmarks"] * task.size, rtol=1e-6)
    else:
        mesh = landmarks_68(task.flame, reprojected_vertices(task.flame, outputs["params_3dmm"], task.size), contour="frontal")
        np.testing.assert_allclose(predicted, np.asarray(mesh), rtol=1e-5, atol=1e-4)
    assert (config.train.num_steps, tuple(config.eval.extra_splits)) == (
        _cell_config(DAD_GRID, "row5").train.num_steps, ("test_ood",))
