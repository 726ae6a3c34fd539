"""Reading and writing PyTorch state dicts as `dict[str, np.ndarray]`.

`.safetensors` needs only the `safetensors` package; `.pth`/`.pt`/`.bin` (torch pickles)
need torch (`pip install jaxhead[torch]`) and are read with `torch.load(weights_only=True)`,
which refuses arbitrary pickled objects; a TorchScript archive under one of these suffixes has
its tensors read without running its code (`torchscript_archive`). Key order is kept both ways: safetensors stores
tensors sorted by name, so the written order goes into the file's metadata.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jaxhead.interop.torchscript_archive import is_torchscript_archive, read_torchscript_state_dict

TORCH_SUFFIXES = (".pth", ".pt", ".bin")
SAFETENSORS_SUFFIX = ".safetensors"
KEY_ORDER_METADATA = "key_order"


def _import_torch(path: Path, action: str):
    try:
        import torch
    except ImportError as err:
        raise ImportError(
            f"{action} {path} needs PyTorch (a {path.suffix} file is a torch pickle); install the "
            f"torch extra (pip install 'jaxhead[torch]') or use a {SAFETENSORS_SUFFIX} file"
        ) from err
    return torch


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_format(path: str | Path) -> None:
    """Raises a clear error unless `path` has a state-dict suffix this module reads and writes."""
    path = Path(path)
    if path.suffix not in TORCH_SUFFIXES + (SAFETENSORS_SUFFIX,):
        raise ValueError(
            f"{path}: unknown state-dict format {path.suffix!r}; expected one of "
            f"{TORCH_SUFFIXES + (SAFETENSORS_SUFFIX,)}"
        )


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Reads a state dict (key -> array, in file order) from .pth/.pt/.bin or .safetensors."""
    path = Path(path)
    check_format(path)
    if not path.is_file():
        raise FileNotFoundError(f"state dict {path} does not exist")
    if path.suffix == SAFETENSORS_SUFFIX:
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as f:
            keys = list(f.keys())
            order = json.loads((f.metadata() or {}).get(KEY_ORDER_METADATA, "[]"))
            if sorted(order) == sorted(keys):
                keys = order
            return {k: f.get_tensor(k) for k in keys}
    if is_torchscript_archive(path):
        return read_torchscript_state_dict(path)
    torch = _import_torch(path, "Reading")
    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(obj, Mapping):
        raise ValueError(
            f"{path}: expected a state dict (a mapping of names to tensors), got {type(obj).__name__}"
        )
    out = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        out[str(key)] = value.detach().cpu().numpy()
    return out


def write_state_dict(path: str | Path, state_dict: Mapping[str, np.ndarray]) -> None:
    """Writes a state dict atomically (temp file + rename) in the format of `path`'s suffix.

    Arrays are made C-contiguous with `np.array(x, order="C")` first: safetensors writes the
    raw buffer, and `np.ascontiguousarray` would turn 0-d arrays (`num_batches_tracked`) into
    shape (1,), which a strict PyTorch load rejects.
    """
    path = Path(path)
    check_format(path)
    arrays = {str(k): np.array(v, order="C") for k, v in state_dict.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if path.suffix == SAFETENSORS_SUFFIX:
            from safetensors.numpy import save_file

            save_file(arrays, tmp, metadata={KEY_ORDER_METADATA: json.dumps(list(arrays))})
        else:
            torch = _import_torch(path, "Writing")
            torch.save({k: torch.from_numpy(v) for k, v in arrays.items()}, tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def list_keys(keys: list[str], limit: int = 20) -> str:
    return ", ".join(keys[:limit]) + (" ..." if len(keys) > limit else "")


def checked_state_dict(
    state_dict: Mapping[str, Any],
    targets: list[tuple[str, Any, str]],
    to_torch: Callable[[np.ndarray, str], np.ndarray],
    what: str,
) -> dict[str, np.ndarray]:
    """The state dict as numpy arrays, once every key fits `targets`.

    targets: (key, variable or None for `num_batches_tracked`, layout) in official order;
    to_torch(array, layout) gives the official shape of a variable. Missing keys, unexpected
    keys, shape and dtype mismatches are reported together in one ValueError about `what`.
    """
    sd = {k: np.asarray(v) for k, v in state_dict.items()}
    expected = {key for key, _, _ in targets}
    missing = [key for key, _, _ in targets if key not in sd]
    unexpected = [key for key in sd if key not in expected]
    problems = []
    for key, var, layout in targets:
        if key not in sd:
            continue
        value = sd[key]
        if var is None:
            if value.shape != () or not np.issubdtype(value.dtype, np.integer):
                problems.append(f"{key}: expected an integer scalar, got {value.dtype} {list(value.shape)}")
            continue
        want = to_torch(np.zeros(var[...].shape, np.float32), layout).shape
        if value.shape != want:
            problems.append(f"{key}: shape {list(value.shape)}, expected {list(want)}")
        elif not np.issubdtype(value.dtype, np.floating):
            problems.append(f"{key}: dtype {value.dtype}, expected a float tensor")
    if missing or unexpected or problems:
        lines = [f"the state dict does not fit this {what}:"]
        if missing:
            lines.append(f"  {len(missing)} missing keys: {list_keys(missing)}")
        if unexpected:
            lines.append(f"  {len(unexpected)} unexpected keys: {list_keys(unexpected)}")
        lines += [f"  {p}" for p in problems]
        raise ValueError("\n".join(lines))
    return sd
