"""Data parallelism: 8 fake CPU devices give the same step as 1 device (separate process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_eight_devices_match_one_device() -> None:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("multidevice_check.py"))],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert abs(r["loss_1"] - r["loss_8"]) <= 1e-5 * max(1.0, abs(r["loss_1"]))
    assert r["num_batch_stats"] > 0
    assert r["grads"] < 1e-4, r
    assert r["batch_stats"] < 1e-5, r
    assert r["params"] < 1e-5, r
