"""Reading TorchScript weights without running the archive's code.

A hostile archive whose `__setstate__` creates a file is shown to do so under `torch.jit.load`,
then refused by the reader with no file created; a data.pkl that names `os.system` is refused;
real traced archives read back exactly what `state_dict()` holds, strided views included.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Tuple

import numpy as np
import pytest

from flame_jax.safe_pickle import UnsafePickleError
from jaxhead.interop.dad3dnet import read_dad3dnet_checkpoint
from jaxhead.interop.state_dict_io import read_state_dict
from jaxhead.interop.torchscript_archive import is_torchscript_archive, read_torchscript_state_dict

torch = pytest.importorskip("torch")


class _FileWriter(torch.nn.Module):
    """A scripted module whose loading creates the file named in its state."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.weight = torch.nn.Parameter(torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight

    @torch.jit.export
    def __getstate__(self) -> Tuple[str, torch.Tensor, bool]:
        return (self.path, self.weight, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[str, torch.Tensor, bool]) -> None:
        self.path = state[0]
        # from_file(shared=True) creates the file; the use keeps the call in the compiled code.
        marker = torch.from_file(self.path, shared=True, size=3)
        self.weight = state[1] + 0.0 * marker
        self.training = state[2]


class _Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.register_buffer("view", torch.arange(12.0).reshape(3, 4)[:, 1:3])  # a strided view
        self.register_buffer("low", torch.randn(2, 2).to(torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x)) + self.view.sum() + self.low.float().sum()


def _hostile_archive(tmp_path: Path, name: str) -> tuple[Path, Path]:
    marker = tmp_path / "created_by_the_archive"
    archive = tmp_path / name
    torch.jit.script(_FileWriter(str(marker))).save(str(archive))
    assert not marker.exists()
    return archive, marker


def test_hostile_archive_runs_code_under_torch_but_not_here(tmp_path):
    archive, marker = _hostile_archive(tmp_path, "evil.pth")
    torch.jit.load(str(archive))  # the attack is real: loading the archive with torch runs it
    assert marker.exists()
    marker.unlink()

    assert is_torchscript_archive(archive)
    for read in (read_torchscript_state_dict, read_dad3dnet_checkpoint, read_state_dict):
        with pytest.raises(ValueError, match="custom __getstate__"):
            read(archive)
    assert not marker.exists()


def test_data_pkl_naming_a_python_global_is_refused(tmp_path):
    class RunsShell:
        def __reduce__(self):
            import os

            return os.system, (f"touch {tmp_path / 'shell_ran'}",)

    archive = tmp_path / "evil.trcd"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps(RunsShell(), protocol=2))
        z.writestr("evil/code/__torch__.py", "class Evil(Module):\n  __parameters__ = []\n")
    with pytest.raises(UnsafePickleError, match="refusing to load (posix|os).system"):
        read_dad3dnet_checkpoint(archive)
    assert not (tmp_path / "shell_ran").exists()


def test_traced_archive_reads_its_state_dict(tmp_path):
    module = _Small().eval()
    traced = torch.jit.trace(module, torch.zeros(1, 3, 8, 8))
    path = tmp_path / "small.pt"
    traced.save(str(path))
    expected = torch.jit.load(str(path)).state_dict()
    got = read_torchscript_state_dict(path)
    assert list(got) == list(expected)
    for key, value in expected.items():
        want = value.float().numpy() if value.dtype == torch.bfloat16 else value.numpy()
        have = got[key].astype(np.float32) if value.dtype == torch.bfloat16 else got[key]
        assert have.shape == want.shape and have.dtype == want.dtype, key
        np.testing.assert_array_equal(have, want, err_msg=key)
    assert read_state_dict(path).keys() == got.keys()


def test_tensor_record_past_its_storage_is_rejected(tmp_path):
    module = torch.nn.Linear(2, 2)
    path = tmp_path / "lin.trcd"
    torch.jit.trace(module, torch.zeros(1, 2)).save(str(path))
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    storage = next(n for n in members if "/data/" in n and members[n] and len(members[n]) == 16)
    members[storage] = members[storage][:8]  # the 2x2 weight's storage cut to 2 floats
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(ValueError, match="fewer than|runs past"):
        read_torchscript_state_dict(path)


def test_not_an_archive(tmp_path):
    path = tmp_path / "x.trcd"
    path.write_bytes(io.BytesIO(b"not a zip").getvalue())
    assert not is_torchscript_archive(path)
    with pytest.raises(ValueError, match="not a TorchScript archive"):
        read_dad3dnet_checkpoint(path)
