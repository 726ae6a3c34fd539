"""Loading pickles from users' files without executing anything: a restricted unpickler.

FLAME model files (2020 with chumpy objects, 2023, 2023 Open), the RingNet/DAD landmark
embeddings and the official repos' small pickled dicts only need numpy arrays, Python
containers, scipy sparse matrices and chumpy arrays. `safe_load` resolves exactly those:
  * numpy arrays, dtypes and scalars (NumPy 1 and 2 module names);
  * Python-2 object reconstruction (copy_reg._reconstructor, __builtin__.object), which
    the unpickler's automatic name mapping would miss once `find_class` is overridden;
  * collections.OrderedDict, and _codecs.encode (bytes in protocol-2 pickles from Python 3);
  * scipy.sparse csc/csr matrices, captured as their pickled state and densified here
    (no scipy class is instantiated from the file);
  * chumpy objects (chumpy is not imported or needed): placeholders whose state is
    resolved into arrays after loading.
Anything else is refused with an error that names the file and the `module.name` the
pickle asked for; nothing from the file is executed.
"""

from __future__ import annotations

import codecs
import collections
import copyreg
import io
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.lib.format as npy_format

_NUMPY_CLASSES = {
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy.core.numeric", "_frombuffer"): np._core.numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): np._core.numeric._frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,
    ("copyreg", "_reconstructor"): copyreg._reconstructor,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
    ("collections", "OrderedDict"): collections.OrderedDict,
    # Protocol-2 pickles written by Python 3 rebuild bytes (array buffers) with it.
    ("_codecs", "encode"): codecs.encode,
}
_SPARSE_MODULES = ("scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse.csr", "scipy.sparse._csr")


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asked for something outside the allow-list; nothing was executed."""


class _SparseShim:
    """Stands in for a scipy csc/csr matrix: keeps the pickled state, densifies on request.

    Pickles rebuild it with `object.__new__` (no __init__), so the format is a class attribute.
    """

    fmt = "csc"
    state: dict[str, Any] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.state = state

    def dense(self, where: str) -> np.ndarray:
        try:
            data, indices, indptr = (np.asarray(self.state[k]) for k in ("data", "indices", "indptr"))
            shape = tuple(self.state.get("_shape", self.state.get("shape")))
        except (KeyError, TypeError) as e:
            raise UnsafePickleError(
                f"{where}: sparse matrix state has keys {sorted(self.state)}; expected data, indices, indptr, _shape"
            ) from e
        out = np.zeros(shape, dtype=data.dtype)
        major = shape[1] if self.fmt == "csc" else shape[0]
        for k in range(major):
            sl = slice(indptr[k], indptr[k + 1])
            if self.fmt == "csc":
                out[indices[sl], k] = data[sl]
            else:
                out[k, indices[sl]] = data[sl]
        return out


class _ChumpyShim:
    """Stands in for any chumpy class: keeps the pickled state for `_resolve`."""

    state: dict[str, Any] = {}

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {"x": state}


def _shim_class(base: type, fmt: str | None = None) -> type:
    # A fresh subclass per use: `copyreg._reconstructor(cls, object, None)` instantiates it.
    return type(base.__name__, (base,), {} if fmt is None else {"fmt": fmt})


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, source: str):
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_CLASSES:
            return _NUMPY_CLASSES[(module, name)]
        if module in _SPARSE_MODULES and name in ("csc_matrix", "csr_matrix"):
            return _shim_class(_SparseShim, name[:3])
        if module == "chumpy" or module.startswith("chumpy."):
            return _shim_class(_ChumpyShim)
        raise UnsafePickleError(
            f"{self.source}: refusing to load {module}.{name} (only numpy arrays, Python containers, "
            "scipy sparse matrices and chumpy arrays are allowed; nothing was executed)"
        )


def _resolve(obj: Any, where: str) -> Any:
    """Replaces sparse and chumpy placeholders by numpy arrays, recursively."""
    if isinstance(obj, _SparseShim):
        return obj.dense(where)
    if isinstance(obj, _ChumpyShim):
        s = obj.state
        if "x" in s:
            return np.asarray(_resolve(s["x"], where))
        if "a" in s and "idxs" in s:
            source = np.asarray(_resolve(s["a"], where)).reshape(-1)
            out = source[np.asarray(s["idxs"]).reshape(-1)]
            shape = s.get("preferred_shape")
            return out.reshape(shape) if shape is not None else out
        raise UnsafePickleError(f"{where}: a chumpy object with state keys {sorted(s)} cannot be turned into an array")
    if isinstance(obj, dict):
        return type(obj)((k, _resolve(v, f"{where}[{k!r}]")) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v, f"{where}[{i}]") for i, v in enumerate(obj))
    return obj


def safe_load(file: str | Path | BinaryIO, *, source: str | None = None) -> Any:
    """Unpickles `file` through the allow-list (latin1 for Python-2 pickles).

    Args:
      file: a path or a binary file object.
      source: the name used in error messages (default: the path).

    Raises:
      UnsafePickleError: naming the file and the refused `module.name`.
    """
    if isinstance(file, (str, Path)):
        with open(file, "rb") as f:
            return safe_load(f, source=source or str(file))
    where = source or getattr(file, "name", "<pickle>")
    try:
        return _resolve(_RestrictedUnpickler(file, where).load(), where)
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise pickle.UnpicklingError(f"{where}: not a readable pickle ({e})") from e


def safe_load_npy(path: str | Path) -> Any:
    """Loads a .npy file; object arrays (pickled dicts such as `flame_dynamic_embedding.npy`)
    go through `safe_load` instead of `np.load(allow_pickle=True)`.

    Returns the array, or for a 0-d object array the object it holds.
    """
    path = Path(path)
    with open(path, "rb") as f:
        try:
            version = npy_format.read_magic(f)
            read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, _, dtype = read_header(f)
        except ValueError as e:
            raise ValueError(f"{path}: not a .npy file ({e})") from e
        if not dtype.hasobject:
            f.seek(0)
            return np.load(f, allow_pickle=False)
        obj = safe_load(io.BytesIO(f.read()), source=str(path))
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        return _resolve(obj.item(), str(path))
    return obj
