"""One run per workdir: an exclusive `fcntl.flock` on `WORKDIR/.lock`, held for the whole run.

The kernel drops the lock when the process dies (also on SIGKILL), so a crashed run never
leaves a stale lock behind; the file only records the holder's PID for the message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

LOCK_FILE = ".lock"


class WorkdirBusyError(RuntimeError):
    """Another process is training in this workdir."""


@contextlib.contextmanager
def workdir_lock(workdir: str | Path) -> Iterator[None]:
    path = Path(workdir) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise WorkdirBusyError(
                f"{workdir} is in use by another run (PID {holder}); wait for it, or pick another --workdir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
