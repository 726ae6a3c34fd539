"""Loading FLAME files: official-layout pickles (incl. chumpy objects and sparse J_regressor) without
chumpy, the .npz conversion, and errors that name the key."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse

from flame_jax import lbs
from flame_jax.convert import convert
from flame_jax.io import FlameFileError, load_flame, load_flame_arrays
from tests.flame_jax.flame_fixtures import random_flame_arrays


def _official_pickle(path: Path, a: dict, chumpy: bool, monkeypatch: pytest.MonkeyPatch | None = None) -> Path:
    payload = dict(a, J_regressor=scipy.sparse.csc_matrix(a["J_regressor"]), bs_style="lbs", bs_type="lrotmin")
    if chumpy:
        mod, sub = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

        class Ch:
            def __init__(self, x):
                self.x = x

            def __getstate__(self):
                return {"x": self.x}

        Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
        sub.Ch, mod.ch = Ch, sub
        monkeypatch.setitem(sys.modules, "chumpy", mod)
        monkeypatch.setitem(sys.modules, "chumpy.ch", sub)
        payload["shapedirs"] = Ch(a["shapedirs"])
        payload["v_template"] = Ch(a["v_template"])
    path.write_bytes(pickle.dumps(payload, protocol=2))
    if chumpy:  # the loader must work without chumpy importable
        monkeypatch.delitem(sys.modules, "chumpy")
        monkeypatch.delitem(sys.modules, "chumpy.ch")
    return path


@pytest.mark.parametrize("chumpy", [False, True])
def test_official_pickle_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chumpy: bool) -> None:
    a = random_flame_arrays(0)
    path = _official_pickle(tmp_path / "generic_model.pkl", a, chumpy, monkeypatch)
    assert "chumpy" not in sys.modules
    got = load_flame_arrays(path)
    np.testing.assert_array_equal(got["shapedirs"], a["shapedirs"])
    np.testing.assert_allclose(got["J_regressor"], a["J_regressor"])
    assert got["parents"].tolist() == [-1, 0, 1, 1, 1]
    model = load_flame(path, n_shape=5, n_expr=3)
    assert model.shapedirs.shape == (40, 3, 8)
    np.testing.assert_allclose(model.shapedirs[..., 5:], a["shapedirs"][..., 300:303], atol=1e-7)


def test_npz_conversion_round_trip(tmp_path: Path) -> None:
    a = random_flame_arrays(1)
    pkl = _official_pickle(tmp_path / "flame.pkl", a, chumpy=False)
    npz = convert(pkl, tmp_path / "out" / "flame.npz")
    with np.load(npz) as z:
        assert z["shapedirs"].dtype == np.float32 and z["f"].dtype == np.int32 and len(str(z["source_sha256"])) == 64
    m1, m2 = load_flame(pkl, 4, 2), load_flame(npz, 4, 2)
    betas, pose = jnp.linspace(-1, 1, 6), jnp.linspace(-0.3, 0.3, 15)
    np.testing.assert_allclose(lbs(m1, betas, pose)[0], lbs(m2, betas, pose)[0], atol=1e-6)
    assert not list((tmp_path / "out").glob("*.tmp*"))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda a: a.pop("posedirs"), r"missing key\(s\) \['posedirs'\]"),
        (lambda a: a.__setitem__("weights", a["weights"][:, :4]), r"key 'weights' has shape \(40, 4\), expected \(40, 5\)"),
        (lambda a: a["v_template"].__setitem__((3, 1), np.nan), r"key 'v_template' holds NaN"),
        (lambda a: a["f"].__setitem__((0, 0), 999), r"key 'f' must hold integer vertex ids"),
        (lambda a: a["kintree_table"].__setitem__((0, 3), 2), r"parents .* are not FLAME's"),
    ],
)
def test_bad_files_name_the_key(tmp_path: Path, edit, message: str) -> None:
    a = random_flame_arrays(2)
    edit(a)
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(a, protocol=2))
    with pytest.raises(FlameFileError, match=message) as e:
        load_flame_arrays(path)
    assert "bad.pkl" in str(e.value)


def test_too_many_components_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "small.pkl"
    path.write_bytes(pickle.dumps(random_flame_arrays(3, N=50)))
    with pytest.raises(FlameFileError, match="50 components"):
        load_flame(path, 300, 100)
