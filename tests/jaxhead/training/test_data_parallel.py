"""Data parallelism: 8 fake CPU devices give the same step as 1 device (separate process, float64)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# Max relative difference. float64 reduction-order noise measures ~1e-14 (amplified by at most
# ~1e5 through back-propagation, 1e-11); the broken steps differ by 5e-2 or more.
LIMIT = 1e-9


def test_eight_devices_match_one_device_and_broken_steps_do_not() -> None:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("multidevice_check.py"))],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["num_batch_stats"] > 0
    assert all(v < LIMIT for v in r["8"].values()), r
    # The comparison catches a step that normalises per device, and one that also skips the
    # gradient all-reduce.
    for broken in ("bn_per_device", "grad_per_device"):
        assert r[broken]["batch_stats"] > LIMIT and r[broken]["grads"] > LIMIT, r
        assert r[broken]["params"] > LIMIT, r
