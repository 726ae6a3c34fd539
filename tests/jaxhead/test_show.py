"""`jaxhead.show`: contact sheets of both models' input pipelines, drawn by their tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from jaxhead.show import contact_sheet, load_config


@pytest.mark.parametrize("model", ["trg", "dad3dnet"])
def test_contact_sheet(synthetic_tiny: Path, tmp_path: Path, model: str) -> None:
    config = load_config(model, "synthetic_heads", "tiny", str(synthetic_tiny))
    config.data.img_size = config.model.img_size = 64
    out = contact_sheet(config, "train", 4, tmp_path / f"{model}.png")
    assert out.stat().st_size > 10_000
