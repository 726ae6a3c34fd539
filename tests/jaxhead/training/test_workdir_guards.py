"""One run per workdir, resuming only with a compatible config, bounded checkpoints, and a
metrics log that survives a torn last line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from flax import nnx

from configs import trg as trg_configs
from jaxhead import checkpoint
from jaxhead.training.metric_log import METRICS_FILE, MetricLogger, read_metrics
from jaxhead.training.workdir_lock import WorkdirBusyError, workdir_lock


def test_a_second_run_on_a_busy_workdir_is_refused(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
            from jaxhead.training.workdir_lock import workdir_lock
            with workdir_lock({str(tmp_path)!r}):
                print("locked", flush=True)
                time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(WorkdirBusyError, match=f"PID {holder.pid}"):
            with workdir_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with workdir_lock(tmp_path):  # the kernel released the dead holder's lock
        pass


def test_resume_with_a_different_config_lists_the_keys(tmp_path: Path) -> None:
    from jaxhead.train import ConfigMismatchError, check_resumable

    saved = trg_configs.get_config("smoke")
    changed = trg_configs.get_config("smoke")
    changed.optim.learning_rate = 1.0
    changed.model.width_multiplier = 0.5
    changed.train.num_steps = 99  # allowed
    with pytest.raises(ConfigMismatchError) as err:
        check_resumable(checkpoint.config_to_json(saved), changed, tmp_path)
    message = str(err.value)
    assert "optim.learning_rate" in message and "model.width_multiplier" in message
    assert "train.num_steps:" not in message
    check_resumable(checkpoint.config_to_json(saved), saved, tmp_path)


def test_exactly_the_last_n_plus_the_best_are_kept(tmp_path: Path) -> None:
    from trg_random_batch import trg_setup  # tests/jaxhead/training
    from jaxhead.models import build_model

    config, task, _ = trg_setup(1)
    model = build_model(config, rngs=nnx.Rngs(0), **task.model_buffers())
    manager = checkpoint.make_manager(tmp_path, keep_last=2, best_metric="ADD", best_mode="min")
    for step in range(1, 8):  # metrics only at steps 2 and 4; step 2 is the best
        metrics = {2: {"ADD": 1.0}, 4: {"ADD": 5.0}}.get(step)
        checkpoint.save(manager, step, model=model, config=config, metrics=metrics)
    assert manager.all_steps() == [2, 6, 7]
    manager.close()
    # A resumed run (a new manager) still knows step 2 is the best.
    manager = checkpoint.make_manager(tmp_path, keep_last=2, best_metric="ADD", best_mode="min")
    for step in range(8, 10):
        checkpoint.save(manager, step, model=model, config=config, metrics={"ADD": 3.0})
    assert manager.all_steps() == [2, 8, 9]
    assert checkpoint.make_manager(tmp_path, read_only=True).metrics(2) == {"ADD": 1.0}


def test_a_torn_last_line_is_dropped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / METRICS_FILE
    path.write_text(json.dumps({"step": 1, "split": "train", "loss": 2.0}) + "\n" + '{"step": 2, "spl')
    assert [r["step"] for r in read_metrics(tmp_path)] == [1]
    MetricLogger(tmp_path, start_step=1).close()  # a resume at step 1 rewrites the file whole
    assert path.read_text().count("\n") == 1 and np.isclose(read_metrics(tmp_path)[0]["loss"], 2.0)
    path.write_text('{"bad\n' + json.dumps({"step": 1}) + "\n")
    with pytest.raises(ValueError, match="line 1 is not JSON"):
        read_metrics(tmp_path)
