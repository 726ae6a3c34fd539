"""Checksums of checkpoint steps: a step whose files changed, shrank or vanished is found before
it is restored, and named in one line.

Orbax keeps no checksum of the array data it writes: its default format (OCDBT over zarr v2) has
none, its zarr v3 option checksums only the shard index (crc32c), and its step metadata lists
items, not file digests. So after each save process 0 writes
`<step>/checksums.json`: the SHA-256 and size of every file of the step. Steps written before
this existed have no manifest; they are restored unverified, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

MANIFEST = "checksums.json"
QUARANTINE_SUBDIR = "checkpoints_corrupt"


class CorruptCheckpointError(ValueError):
    """A checkpoint step's files differ from the checksums recorded when it was saved."""


def _digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _files(step_dir: Path) -> list[Path]:
    return sorted(p for p in step_dir.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(step_dir: Path) -> None:
    """Records the SHA-256 and size of every file under `step_dir` in `step_dir/checksums.json`."""
    entries = {
        str(p.relative_to(step_dir)): {"sha256": _digest(p), "size": p.stat().st_size} for p in _files(step_dir)
    }
    fd, tmp = tempfile.mkstemp(dir=step_dir, prefix=f".{MANIFEST}.")
    with os.fdopen(fd, "w") as f:
        json.dump(entries, f, indent=1, sort_keys=True)
    os.replace(tmp, step_dir / MANIFEST)


def verify(step_dir: Path) -> bool:
    """True when `step_dir` matches its manifest, False when it has none (an older checkpoint).

    Raises CorruptCheckpointError naming the step and the first bad file.
    """
    manifest = step_dir / MANIFEST
    if not manifest.is_file():
        if not step_dir.is_dir():
            raise CorruptCheckpointError(f"checkpoint step {step_dir.name} of {step_dir.parent}: no such directory")
        return False
    try:
        entries = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CorruptCheckpointError(f"checkpoint step {step_dir.name} of {step_dir.parent}: unreadable {MANIFEST} ({e})")
    where = f"checkpoint step {step_dir.name} of {step_dir.parent} is corrupt"
    for rel, entry in sorted(entries.items()):
        path = step_dir / rel
        if not path.is_file():
            raise CorruptCheckpointError(f"{where}: {rel} is missing")
        size = path.stat().st_size
        if size != entry["size"]:
            raise CorruptCheckpointError(f"{where}: {rel} has {size} bytes, {entry['size']} were written")
        if _digest(path) != entry["sha256"]:
            raise CorruptCheckpointError(f"{where}: {rel} does not match its checksum")
    return True


def check_step(step_dir: Path) -> None:
    """Verifies `step_dir` before a restore: raises CorruptCheckpointError, warns when unverifiable."""
    if not verify(step_dir):
        logging.warning("checkpoint step %s of %s has no %s (written by an older version): restoring it unverified",
                        step_dir.name, step_dir.parent, MANIFEST)


def newest_good_step(checkpoint_dir: Path, steps: list[int]) -> tuple[int | None, list[str]]:
    """(The newest of `steps` that verifies, the one-line reasons of the newer ones that did not)."""
    problems = []
    for step in sorted(steps, reverse=True):
        try:
            check_step(checkpoint_dir / str(step))
            return step, problems
        except CorruptCheckpointError as e:
            problems.append(str(e))
    return None, problems


def quarantine(checkpoint_dir: Path, step: int) -> Path:
    """Moves a corrupt step out of the checkpoint directory (next to it), so that training can
    save that step number again; returns where it went."""
    target = checkpoint_dir.parent / QUARANTINE_SUBDIR / str(step)
    if target.exists():
        target = Path(tempfile.mkdtemp(dir=target.parent, prefix=f"{step}-"))
        target.rmdir()
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(checkpoint_dir / str(step)), str(target))
    return target
