"""The official reference material in ../shared/reference: state-dict manifests and weights.

`official_weights.py` there is the numpy recipe the golden outputs were made with; it lives
outside the repository, so it is imported from its path.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np


def manifest(shared_dir: Path, model: str) -> list[tuple[str, list[int], str]]:
    """[(key, shape, dtype)] of the official `state_dict` of `model` ("trg" or "dad3dnet")."""
    return json.loads((shared_dir / "reference" / f"{model}_state_dict.json").read_text())


def official_state_dict(shared_dir: Path, model: str, seed: int = 0) -> dict[str, np.ndarray]:
    """The official-named weights of `model` filled by the reference recipe (seed 0: the goldens')."""
    ref = shared_dir / "reference"
    spec = importlib.util.spec_from_file_location("official_weights", ref / "official_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.official_state_dict(str(ref / f"{model}_state_dict.json"), seed=seed)
