import os
import subprocess
import sys

import jax
import pytest

from jaxhead.training.xla_flags import add_xla_flags


def test_rejects_what_is_not_an_xla_flag():
    with pytest.raises(ValueError, match="xla_cpu_flags"):
        add_xla_flags("use_onednn=true")


def test_refuses_once_the_backend_runs():
    jax.devices()
    with pytest.raises(RuntimeError, match="too late"):
        add_xla_flags("--xla_cpu_use_onednn=true")


def test_sets_the_flags_before_the_backend_starts():
    code = (
        "import os; from jaxhead.training.xla_flags import add_xla_flags; "
        "add_xla_flags('--xla_cpu_enable_fast_math=false'); import jax; jax.devices(); "
        "print(os.environ['XLA_FLAGS'])"
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    out = run.stdout
    assert out.split() == ["--xla_force_host_platform_device_count=2", "--xla_cpu_enable_fast_math=false"]
