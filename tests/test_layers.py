"""The one-way layers configs -> jaxhead -> data_pipelines -> flame_jax, checked by import-linter.

The contract lives in pyproject.toml. The second test plants a lazy back-import (inside a
function) in a copy of the packages and checks that the linter fails naming it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("configs", "jaxhead", "data_pipelines", "flame_jax")


def _lint(root: Path) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install 'jaxhead[test]')")
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run(
        [str(lint), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )


def test_layers_contract_is_kept() -> None:
    proc = _lint(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize(
    ("module", "back_import"),
    [("data_pipelines/image_ops.py", "jaxhead.visualize"), ("flame_jax/lbs.py", "data_pipelines.image_ops")],
)
def test_a_lazy_back_import_breaks_the_contract(tmp_path: Path, module: str, back_import: str) -> None:
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / module, "a") as f:
        f.write(f"\n\ndef _planted():\n    import {back_import}  # noqa: F401\n")
    proc = _lint(tmp_path)
    assert proc.returncode != 0
    assert "BROKEN" in proc.stdout and back_import in proc.stdout, proc.stdout
