"""Worker processes that die with their parent, however the parent dies (docs/reliability.md,
"Kills, signals, children"). On Linux, after ``prctl(PR_SET_PDEATHSIG)`` a worker checks the
parent did not die before the request (the race the man page warns of); elsewhere a daemon
thread polls ``getppid()``. `worker_pool` kills its workers when its block raises.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.5


def _prctl_deathsig(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(POLL_SECONDS)


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> None:
    """Pool initializer: end this process with `sig` when `parent` ends (SIGTERM lets a
    worker that writes outputs remove its temporaries first, `util.signals`)."""
    if not _prctl_deathsig(sig):
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
    # A worker's own SIGTERM/SIGHUP: end at once (the parent decides what is cleaned up).
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


def kill_workers(pool: ProcessPoolExecutor) -> None:
    """SIGKILL every live worker of `pool` and stop it without waiting for running tasks."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        with contextlib.suppress(Exception):
            p.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(timeout=5)


@contextlib.contextmanager
def worker_pool(max_workers: int) -> Iterator[ProcessPoolExecutor]:
    """A ProcessPoolExecutor whose workers die with this process (see the module doc)."""
    pool = ProcessPoolExecutor(
        max_workers=max_workers, initializer=die_with_parent, initargs=(os.getpid(),)
    )
    try:
        yield pool
    except BaseException:
        kill_workers(pool)
        raise
    pool.shutdown(wait=True)
