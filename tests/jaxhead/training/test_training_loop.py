"""What the training loop decides and leaves behind: model selection on like-for-like numbers, early
stopping that survives a rerun, one final-evaluation path shared with `jaxhead.evaluate`, and
everything closed when a run fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import psutil
import pytest

from configs import trg as trg_configs
from jaxhead import checkpoint
from jaxhead.tasks import make_task
from jaxhead.training import data as train_data
from jaxhead.training import sharding
from jaxhead.training.evaluation import evaluate_split
from jaxhead.training.metric_log import read_metrics
from jaxhead.training.steps import make_eval_step, split_model

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow

# Evaluate after every step on the first test batch alone (8 of 32 examples), stop at the first
# evaluation that is not better, keep every checkpoint, fit the baseline on one batch, no pictures.
OVERRIDES = (
    "--config.train.num_steps=40", "--config.train.eval_every_steps=1", "--config.train.checkpoint_every=2",
    "--config.train.keep_checkpoints=100", "--config.train.early_stopping_patience=1",
    "--config.eval.max_batches=1", "--config.eval.baseline_batches=1", "--config.eval.num_pictures=0",
)


def _train_cli(workdir: Path, data_dir: Path) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "jaxhead.train", "--config=configs/trg.py:smoke", f"--workdir={workdir}",
            f"--config.data.data_dir={data_dir}", *OVERRIDES]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def stopped_run(synthetic_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workdir whose run stopped early, through the CLI."""
    workdir = tmp_path_factory.mktemp("stopped") / "run"
    r = _train_cli(workdir, synthetic_tiny)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "early stopping at step" in r.stderr
    return workdir


def _stop_step(workdir: Path) -> int:
    return checkpoint.make_manager(workdir, read_only=True).latest_step()


def test_every_best_candidate_is_scored_on_the_same_examples(stopped_run: Path) -> None:
    manager = checkpoint.make_manager(stopped_run, read_only=True)
    steps = manager.all_steps()
    assert len(steps) >= 2 and steps[-1] == _stop_step(stopped_run) < 40
    config, _ = checkpoint.read_config(stopped_run)
    task = make_task(config)
    mesh = sharding.data_mesh(jax.devices()[:1])
    for step in steps:
        model, _, _ = checkpoint.load_model(stopped_run, step)
        graphdef, params, rest = split_model(model)
        with train_data.eval_batches(config, config.eval.batch_size, task.transform()) as batches:
            rescored = evaluate_split(
                make_eval_step(graphdef, task, mesh), params, rest, batches, task, mesh, config.eval.batch_size,
                max_batches=1,
            )["summary"]
        recorded = manager.metrics(step)
        # Periodic saves and the final one alike: the metric is the first batch's.
        np.testing.assert_allclose(recorded[task.best_metric], rescored[task.best_metric], rtol=1e-4, err_msg=f"step {step}")
    # The whole split is still reported, apart from the monitored subset.
    final = json.loads((stopped_run / "eval" / "test.json").read_text())
    assert final["num_examples"] == 32
    assert not np.isclose(final["model"][task.best_metric], manager.metrics(steps[-1])[task.best_metric])


def test_a_run_that_stopped_early_stays_stopped(stopped_run: Path, synthetic_tiny: Path) -> None:
    stop = _stop_step(stopped_run)
    log_before = (stopped_run / "metrics.jsonl").read_text()
    r = _train_cli(stopped_run, synthetic_tiny)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"stopped early at step {stop}" in r.stderr and "nothing to do" in r.stderr
    assert _stop_step(stopped_run) == stop
    assert (stopped_run / "metrics.jsonl").read_text() == log_before
    assert max(row["step"] for row in read_metrics(stopped_run)) == stop


def test_evaluate_shares_the_final_evaluation(stopped_run: Path) -> None:
    from jaxhead.evaluate import evaluate

    evaluate(stopped_run)  # num_pictures=0 in the run's config: no picture, no crash
    trained = json.loads((stopped_run / "eval" / "test.json").read_text())
    evaluated = json.loads((stopped_run / "eval" / "synthetic_heads_test.json").read_text())
    # The baseline is fitted on config.eval.baseline_batches training batches in both.
    assert evaluated["mean-prediction baseline"] == trained["mean-prediction baseline"]
    assert not (stopped_run / "eval" / "synthetic_heads_test.png").exists()
    assert not (stopped_run / "predictions.png").exists()


def test_a_failing_run_closes_what_it_opened(
    synthetic_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jaxhead.train import NonFiniteError, train
    from jaxhead.training.metric_log import MetricLogger

    closed: list[str] = []
    for cls, name in ((MetricLogger, "logger"), (ocp.CheckpointManager, "manager")):
        original = cls.close
        monkeypatch.setattr(cls, "close", lambda self, o=original, n=name: (closed.append(n), o(self))[1])

    config = trg_configs.get_config("smoke")
    config.data.data_dir = str(synthetic_tiny)
    config.data.num_workers = 2
    config.optim.learning_rate = 1e39  # the first step overflows: the loop raises at its first boundary
    config.train.update(num_steps=4, log_every=2, eval_every_steps=100, checkpoint_every=100)
    with pytest.raises(NonFiniteError):
        train(config, tmp_path / "run")
    assert sorted(closed) == ["logger", "manager"]
    # The grain workers are gone; multiprocessing's resource tracker lives as long as the interpreter.
    children = [" ".join(p.cmdline()) for p in psutil.Process().children(recursive=True)]
    assert [c for c in children if "resource_tracker" not in c] == [], children
