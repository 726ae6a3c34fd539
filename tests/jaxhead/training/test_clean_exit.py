"""A run with grain worker processes exits cleanly: no leaked shared memory reported at exit, and
no worker left behind when the run is killed.

The child reads an evaluation pass and a few training batches through 2 workers, as training
does, and exits straight away (before the fix, grain's background unlinks were still queued then,
and Python's resource tracker reported 5 to 14 "leaked shared_memory objects").
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

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


ENDLESS_CHILD = textwrap.dedent(
    """
    import contextlib, itertools, sys, time

    def main():
        from configs import trg as trg_configs
        from jaxhead.tasks import make_task
        from jaxhead.training import data as train_data

        config = trg_configs.get_config("smoke")
        config.data.data_dir = sys.argv[1]
        config.data.num_workers = 2
        with contextlib.closing(iter(train_data.train_batches(config, 8, make_task(config).transform()))) as it:
            for _ in itertools.islice(it, 3):
                pass
            print("reading", flush=True)
            time.sleep(600)

    if __name__ == "__main__":
        main()
    """
)


def _gone(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE  # exited; nobody has reaped it yet
    except psutil.NoSuchProcess:
        return True


def test_workers_die_with_a_killed_run(synthetic_tiny: Path, tmp_path: Path) -> None:
    script = tmp_path / "endless.py"
    script.write_text(ENDLESS_CHILD)
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    run = subprocess.Popen([sys.executable, str(script), str(synthetic_tiny)], cwd=REPO, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    workers: list[psutil.Process] = []
    try:
        assert run.stdout.readline().strip() == "reading"
        workers = [p for p in psutil.Process(run.pid).children(recursive=True)
                   if "resource_tracker" not in " ".join(p.cmdline())]
        assert len(workers) >= 2
        run.send_signal(signal.SIGKILL)
        run.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(_gone(p) for p in workers):
            time.sleep(0.2)
        assert all(_gone(p) for p in workers), [p.pid for p in workers if not _gone(p)]
    finally:
        run.kill()
        run.wait()
        for p in workers:  # a failing test leaves none behind
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
