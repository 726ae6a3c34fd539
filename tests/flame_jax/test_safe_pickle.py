"""The restricted unpickler: refuses code, reads numpy/sparse/chumpy content without chumpy."""

from __future__ import annotations

import io
import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse

from flame_jax.safe_pickle import UnsafePickleError, safe_load, safe_load_npy


class _RunsCommand:
    def __init__(self, sentinel: str):
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


def test_refuses_code_and_runs_nothing(tmp_path) -> None:
    sentinel = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": _RunsCommand(str(sentinel))}))
    with pytest.raises(UnsafePickleError) as e:
        safe_load(path)
    assert "evil.pkl" in str(e.value) and ("posix.system" in str(e.value) or "os.system" in str(e.value))
    assert not sentinel.exists()
    # The same payload through plain pickle would have run (the test can fail).
    pickle.loads(path.read_bytes())
    assert sentinel.exists()


def test_refuses_other_globals(tmp_path) -> None:
    with pytest.raises(UnsafePickleError, match=r"builtins\.eval"):
        safe_load(io.BytesIO(pickle.dumps(eval)), source="x.pkl")


def _install_fake_chumpy(monkeypatch) -> type:
    chumpy = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x

        def __getstate__(self):
            return {"x": self.x, "_dirty": False}

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch = Ch
    chumpy.ch = ch
    monkeypatch.setitem(sys.modules, "chumpy", chumpy)
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch)
    return Ch


def test_chumpy_style_flame_pickle_loads_without_chumpy(tmp_path, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    shapedirs = rng.normal(size=(6, 3, 4))
    J = scipy.sparse.csc_matrix(rng.dirichlet(np.ones(6), size=5) * (rng.uniform(size=(5, 6)) > 0.3))
    Ch = _install_fake_chumpy(monkeypatch)
    payload = {
        "v_template": rng.normal(size=(6, 3)),
        "shapedirs": Ch(shapedirs),
        "J_regressor": J,
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.uint32),
        "bs_style": "lbs",
    }
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    monkeypatch.delitem(sys.modules, "chumpy")
    out = safe_load(path)
    np.testing.assert_array_equal(out["shapedirs"], shapedirs)
    np.testing.assert_array_equal(out["J_regressor"], J.toarray())
    np.testing.assert_array_equal(out["v_template"], payload["v_template"])
    assert out["bs_style"] == "lbs" and "chumpy" not in sys.modules


def test_object_npy_goes_through_the_allow_list(tmp_path) -> None:
    good = tmp_path / "emb.npy"
    np.save(good, np.array({"lmk_face_idx": [np.arange(3, dtype=np.uint32)] * 2}, dtype=object), allow_pickle=True)
    assert safe_load_npy(good)["lmk_face_idx"][1].tolist() == [0, 1, 2]
    plain = tmp_path / "idx.npy"
    np.save(plain, np.arange(5))
    np.testing.assert_array_equal(safe_load_npy(plain), np.arange(5))
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([_RunsCommand(str(tmp_path / "x"))], dtype=object), allow_pickle=True)
    with pytest.raises(UnsafePickleError, match="bad.npy"):
        safe_load_npy(bad)
    assert not (tmp_path / "x").exists()


def test_real_embedding_files(shared_dir) -> None:
    root = shared_dir / "assets" / "ringnet" / "flame_model"
    static = safe_load(root / "flame_static_embedding.pkl")
    assert static["lmk_face_idx"].shape == (51,) and static["lmk_b_coords"].shape == (51, 3)
    dyn = safe_load_npy(root / "flame_dynamic_embedding.npy")
    assert len(dyn["lmk_face_idx"]) == 79 and np.stack(dyn["lmk_b_coords"]).shape == (79, 17, 3)
