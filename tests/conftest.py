"""Shared test setup: CPU-only JAX and the optional ../shared reference material."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("JAXHEAD_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared` (specs, assets, reference goldens); skips the test where it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared reference material is absent")
    return SHARED


@pytest.fixture(scope="session")
def synthetic_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data_dir holding the `synthetic_heads/tiny` build (64 train / 32 test at 128 px)."""
    from data_pipelines.build import ensure_built

    root = tmp_path_factory.mktemp("data")
    ensure_built("synthetic_heads", "tiny", str(root))
    return root
