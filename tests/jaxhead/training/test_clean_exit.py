"""A run with grain worker processes exits cleanly: no leaked shared memory reported at exit.

The child reads an evaluation pass and a few training batches through 2 workers, as training
does, and exits straight away (before the fix, grain's background unlinks were still queued then,
and Python's resource tracker reported 5 to 14 "leaked shared_memory objects").
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

CHILD = textwrap.dedent(
    """
    import contextlib, itertools, sys

    def main():
        from configs import trg as trg_configs
        from jaxhead.tasks import make_task
        from jaxhead.training import data as train_data

        config = trg_configs.get_config("cpu")
        config.data.builder_config = "tiny"
        config.data.data_dir = sys.argv[1]
        config.data.num_workers = 2
        transform = make_task(config).transform()
        with train_data.eval_batches(config, 64, transform) as batches:
            for _ in batches:
                pass
        with contextlib.closing(iter(train_data.train_batches(config, 16, transform))) as it:
            for _ in itertools.islice(it, 3):
                pass
        print("read")

    if __name__ == "__main__":  # grain's workers are spawned: they re-import this file
        main()
    """
)


def test_worker_pipelines_exit_without_leaks(synthetic_tiny: Path, tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, str(script), str(synthetic_tiny)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "read" in proc.stdout
    assert "leaked" not in proc.stderr, proc.stderr[-2000:]
