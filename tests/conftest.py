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
