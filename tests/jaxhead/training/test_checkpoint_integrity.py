"""Verified checkpoints: a step whose files were changed, cut short or removed is named in one line;
training resumes from the newest step that verifies (and ends bitwise equal to an uninterrupted
run); evaluate, predict and export refuse a corrupt step unless --step names a good one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from configs import trg as trg_configs
from jaxhead import checkpoint
from jaxhead.checkpoint_integrity import MANIFEST, CorruptCheckpointError

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def _config(data_dir: Path):
    config = trg_configs.get_config("smoke")
    config.data.data_dir = str(data_dir)
    config.train.update(num_steps=8, log_every=2, eval_every_steps=100, checkpoint_every=2, keep_checkpoints=10)
    return config


def _params(workdir: Path, step: int | None = None) -> list[np.ndarray]:
    model, _, _ = checkpoint.load_model(workdir, step)
    return [np.asarray(x) for x in jax.tree.leaves(nnx.to_pure_dict(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))))]


def _largest_array_file(step_dir: Path) -> Path:
    files = [p for p in (step_dir / "model").rglob("*") if p.is_file() and p.name != MANIFEST]
    return max(files, key=lambda p: p.stat().st_size)


@pytest.fixture(scope="module")
def runs(synthetic_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(an uninterrupted run, a run whose steps 8, 6 and 4 were then damaged)."""
    from jaxhead.train import train

    root = tmp_path_factory.mktemp("integrity")
    train(_config(synthetic_tiny), root / "whole")
    train(_config(synthetic_tiny), root / "damaged")
    steps = root / "damaged" / "checkpoints"
    flipped = _largest_array_file(steps / "8")
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    truncated = _largest_array_file(steps / "6")
    os.truncate(truncated, truncated.stat().st_size // 2)
    (steps / "4" / "_CHECKPOINT_METADATA").unlink()
    return root / "whole", root / "damaged"


def test_a_corrupt_latest_step_is_refused_in_one_line(runs: tuple[Path, Path]) -> None:
    _, damaged = runs
    with pytest.raises(CorruptCheckpointError) as err:
        checkpoint.load_model(damaged)
    message = str(err.value)
    assert "\n" not in message
    assert "checkpoint step 8" in message and "does not match its checksum" in message and "--step" in message
    with pytest.raises(CorruptCheckpointError, match=r"step 6 .* has \d+ bytes"):
        checkpoint.load_model(damaged, 6)
    with pytest.raises(CorruptCheckpointError, match="step 4 .*_CHECKPOINT_METADATA is missing"):
        checkpoint.load_model(damaged, 4)
    assert checkpoint.load_model(damaged, 2)[2] == 2

    env = dict(os.environ, JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-m", "jaxhead.evaluate", f"--workdir={damaged}"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].startswith("error: checkpoint step 8 of "), r.stderr[-2000:]


def test_training_resumes_from_the_newest_good_step(runs: tuple[Path, Path], synthetic_tiny: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from jaxhead.train import train

    whole, damaged = runs
    train(_config(synthetic_tiny), damaged)
    warnings = [r.getMessage() for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(warnings) == 3 and all("\n" not in w for w in warnings)
    assert [w.split(" of ")[0] for w in warnings] == ["checkpoint step 8", "checkpoint step 6", "checkpoint step 4"]
    assert sorted(p.name for p in (damaged / "checkpoints_corrupt").iterdir()) == ["4", "6", "8"]
    assert checkpoint.saved_steps(damaged) == [2, 4, 6, 8]
    for a, b in zip(_params(whole), _params(damaged)):
        np.testing.assert_array_equal(a, b)
    r1, r2 = (json.loads((w / "eval" / "test.json").read_text()) for w in (whole, damaged))
    assert r1["model"] == r2["model"]
