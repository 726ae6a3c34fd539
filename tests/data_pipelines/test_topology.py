"""Face topologies: the synthetic one and the official ARKit one from a TRG-Release layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from configs import trg as trg_configs
from data_pipelines.topology import load_flip_index, load_topology


def test_synthetic_topology_has_trg_shapes() -> None:
    config = trg_configs.get_config(None)
    topo = load_topology(config.data)
    assert topo.init_face.shape == (1220, 3) and topo.kpt_ind.shape == (68,) and topo.subsample.shape == (305,)
    assert topo.triangles.max() < 1220 and np.array_equal(topo.flip_index[topo.flip_index], np.arange(1220))
    np.testing.assert_array_equal(topo.init_rotation, np.eye(3))  # frontal


def test_arkit_topology_from_the_official_files(shared_dir: Path) -> None:
    config = trg_configs.get_config("arkitface")
    config.data.trg_assets_dir = str(shared_dir / "assets" / "trg")
    topo = load_topology(config.data)
    assert topo.triangles.shape == (2304, 3) and topo.kpt_ind[:4].tolist() == [57, 376, 208, 905]
    assert topo.flip_index is None  # evaluation and prediction need no mirror map


def test_flip_index_must_be_an_involution(tmp_path: Path) -> None:
    path = tmp_path / "flip_index.npy"
    np.save(path, np.roll(np.arange(1220), 1))
    with pytest.raises(ValueError, match="its own inverse"):
        load_flip_index(str(path))
    np.save(path, np.arange(1220)[::-1])
    assert load_flip_index(str(path))[0] == 1219
