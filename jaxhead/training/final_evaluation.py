"""The final evaluation of a model, shared by `jaxhead.train` and `jaxhead.evaluate`: fit the
mean-prediction baseline, score the whole split, write the report and draw the first examples."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Callable

import jax
import ml_collections
from jax.sharding import Mesh

from jaxhead.tasks import Task, Transform
from jaxhead.training import data as train_data
from jaxhead.training.evaluation import evaluate_split, global_rows
from jaxhead.training.summary import write_eval_report


def final_evaluation(
    config: ml_collections.ConfigDict,
    task: Task,
    transform: Transform,
    eval_step: Callable,
    params: Any,
    rest: Any,
    mesh: Mesh,
    local_batch_size: int,
    *,
    split: str,
    fit_baseline: bool,
    report: Path,
    picture: Path,
) -> dict[str, Any]:
    """Scores the whole `split` and writes `report`.md / .json and `picture` (process 0).

    fit_baseline: fit the baseline on `config.eval.baseline_batches` unaugmented training batches
      of the dataset; without (e.g. BIWI has no training split) it is the task's prior.
    The picture is drawn only when `config.eval.num_pictures` > 0. The result's "monitor" summary
    covers the first `config.eval.max_batches` batches, the subset periodic evaluations score.
    """
    if fit_baseline:
        with train_data.eval_batches(config, local_batch_size, transform, split="train") as batches:
            task.fit_baseline(global_rows(itertools.islice(batches, config.eval.baseline_batches), local_batch_size))
    with train_data.eval_batches(config, local_batch_size, transform, split=split) as batches:
        result = evaluate_split(
            eval_step, params, rest, batches, task, mesh, local_batch_size,
            monitor_batches=config.eval.max_batches or None, keep_first=config.eval.num_pictures,
            with_baseline=True,
        )
    if jax.process_index() == 0:
        write_eval_report(report.parent, report.name, result, config)
        if result["examples"] is not None:
            task.draw(*result["examples"], picture)
    return result
