"""grain worker processes that exit when the process that started them is gone.

A SIGKILLed training process cannot stop its workers, and they would live on (hundreds of MB
each). grain spawns each worker as a direct child of the training process and runs a
`worker_init_fn` in it: `die_with_parent` starts a thread there that watches the parent's PID.
A watchdog rather than PR_SET_PDEATHSIG, which fires when the *thread* that started the
worker exits, and grain may start workers from a thread that ends before the run does.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Callable

POLL_S = 0.5


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_S)
    os._exit(1)  # the parent is gone: nothing would read what this worker makes


def die_with_parent(parent_pid: int, worker_index: int, worker_count: int) -> None:
    """grain's `worker_init_fn(worker_index, worker_count)`, bound to the training process's PID."""
    del worker_index, worker_count
    threading.Thread(target=_watch, args=(parent_pid,), daemon=True, name="die-with-parent").start()


def worker_init_fn() -> Callable[[int, int], None]:
    """The init function for workers started by this process."""
    return functools.partial(die_with_parent, os.getpid())
