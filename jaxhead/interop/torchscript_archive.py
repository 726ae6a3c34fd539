"""Reading the weights of a TorchScript archive without running any of its code.

`torch.jit.load` compiles the archive's `code/` and runs its `__setstate__` methods, so a
crafted file executes whatever it likes while "loading weights". This reader never compiles
or runs anything from the file:
  * `data.pkl` (the module tree) is unpickled with an allow-list: classes named `__torch__.*`
    become inert placeholders that only keep their pickled state, tensors are rebuilt as
    numpy arrays from the storage records under `data/`, and every other global is refused;
  * which attributes are parameters and buffers is read from the `__parameters__` /
    `__buffers__` declarations of the class definitions in `code/`, parsed with `ast`
    (text only; nothing is compiled or executed).
The result equals `torch.jit.load(path).state_dict()` for module trees whose state is
their attribute dict (traced and plainly scripted modules, such as the released
DAD-3DNet `.trcd`).
"""

from __future__ import annotations

import ast
import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from flame_jax.safe_pickle import UnsafePickleError

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": jnp.bfloat16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


def is_torchscript_archive(path: str | Path) -> bool:
    """A zip with `<root>/data.pkl` and `<root>/code/`: what `torch.jit.save` writes."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any(n.endswith("/data.pkl") for n in names) and any("/code/" in n for n in names)


class _ScriptObject:
    """Stands in for a `__torch__.*` class: keeps the pickled state, runs nothing."""

    qualname = ""

    def __init__(self, *args: Any, **kwargs: Any):
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _identity(value: Any, *args: Any) -> Any:
    return value


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _ArchiveUnpickler(pickle.Unpickler):
    def __init__(self, archive: zipfile.ZipFile, root: str, source: str):
        super().__init__(io.BytesIO(archive.read(f"{root}/data.pkl")))
        self.archive, self.root, self.source = archive, root, source
        self.storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return type(name, (_ScriptObject,), {"qualname": f"{module}.{name}"})
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self._rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        # Typed-list helpers of TorchScript pickles: they only tag Python lists.
        if module == "torch.jit._pickle" and name.startswith(("build_", "restore_type_tag")):
            return _identity
        raise UnsafePickleError(
            f"{self.source}: refusing to load {module}.{name} from the TorchScript archive (only module "
            "placeholders, tensors and containers are allowed; nothing was executed)"
        )

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise UnsafePickleError(f"{self.source}: unexpected persistent id {pid!r} in data.pkl")
        _, storage_type, key, _, numel = pid
        if key not in self.storages:
            raw = self.archive.read(f"{self.root}/data/{key}")
            dtype = storage_type.dtype
            if len(raw) < int(numel) * dtype.itemsize:
                raise ValueError(f"{self.source}: storage data/{key} holds {len(raw)} bytes, fewer than {numel} x {dtype}")
            self.storages[key] = np.frombuffer(raw, dtype, count=int(numel))
        return self.storages[key]

    def _rebuild_tensor(self, storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_: Any) -> np.ndarray:
        size, stride, offset = tuple(int(s) for s in size), tuple(int(s) for s in stride), int(offset)
        if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size + stride):
            raise ValueError(f"{self.source}: malformed tensor record (offset {offset}, size {size}, stride {stride})")
        last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset - 1
        if last >= storage.size:
            raise ValueError(f"{self.source}: tensor of size {size} runs past its storage of {storage.size} elements")
        view = np.lib.stride_tricks.as_strided(
            storage[offset:], size, tuple(s * storage.itemsize for s in stride), writeable=False
        )
        return np.array(view)


def _declared_state(archive: zipfile.ZipFile, root: str) -> dict[str, set[str]]:
    """Class qualname -> the attribute names its `code/` declares as parameters or buffers."""
    declared: dict[str, set[str]] = {}
    prefix = f"{root}/code/"
    for name in archive.namelist():
        if not (name.startswith(prefix) and name.endswith(".py")):
            continue
        module = name[len(prefix) : -len(".py")].replace("/", ".")
        try:
            tree = ast.parse(archive.read(name).decode("utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue  # its classes count as undeclared: every tensor attribute is state
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            names: set[str] = set()
            for stmt in cls.body:
                if (
                    isinstance(stmt, ast.Assign)
                    and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)
                    and stmt.targets[0].id in ("__parameters__", "__buffers__")
                ):
                    names.update(str(v) for v in ast.literal_eval(stmt.value))
            declared[f"{module}.{cls.name}"] = names
    return declared


def _collect(obj: _ScriptObject, prefix: str, declared: dict[str, set[str]], out: dict[str, np.ndarray], source: str) -> None:
    if not isinstance(obj.state, dict):
        raise ValueError(
            f"{source}: {obj.qualname} keeps a custom __getstate__ state ({type(obj.state).__name__}); its "
            "weights cannot be read without running the archive's code. Export a plain state dict instead "
            "(torch.save(module.state_dict(), 'weights.pth'))"
        )
    names = declared.get(obj.qualname)
    for key, value in obj.state.items():
        if isinstance(value, _ScriptObject):
            _collect(value, f"{prefix}{key}.", declared, out, source)
        elif isinstance(value, np.ndarray) and (names is None or key in names):
            out[f"{prefix}{key}"] = value


def read_torchscript_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """`torch.jit.load(path).state_dict()` as numpy arrays, without running the archive's code.

    Raises:
      UnsafePickleError: data.pkl asks for anything outside the allow-list.
      ValueError: a malformed archive or tensor record, or a module with custom state.
    """
    path = Path(path)
    source = str(path)
    with zipfile.ZipFile(path) as archive:
        roots = sorted({n.split("/", 1)[0] for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1})
        if len(roots) != 1:
            raise ValueError(f"{source}: not a TorchScript archive (expected one <root>/data.pkl, found {len(roots)})")
        root = roots[0]
        byteorder = archive.read(f"{root}/byteorder").decode().strip() if f"{root}/byteorder" in archive.namelist() else "little"
        if byteorder != "little":
            raise ValueError(f"{source}: big-endian TorchScript archives are not supported")
        try:
            top = _ArchiveUnpickler(archive, root, source).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{source}: unreadable TorchScript data.pkl ({e})") from e
        declared = _declared_state(archive, root)
    if not isinstance(top, _ScriptObject):
        raise ValueError(f"{source}: data.pkl holds a {type(top).__name__}, not a TorchScript module")
    out: dict[str, np.ndarray] = {}
    _collect(top, "", declared, out, source)
    return out
