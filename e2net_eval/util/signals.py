"""SIGTERM (and SIGHUP) as a clean exit: `graceful_termination` raises
``SystemExit(128 + signal)`` in the main thread, so ``finally`` blocks remove temporaries;
workers forked meanwhile inherit the handler. See docs/reliability.md, "Kills, signals, children".
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(SystemExit):
    """Raised in the main thread when SIGTERM/SIGHUP arrives inside `graceful_termination`."""


def _raise(signum: int, frame) -> None:  # noqa: ARG001 - signal handler signature
    # Further signals of this kind wait until the cleanup below the raise has run.
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(128 + signum)


@contextlib.contextmanager
def graceful_termination() -> Iterator[None]:
    """Within the block, SIGTERM/SIGHUP raise `Terminated`; the old handlers come back after.
    Only over Python's default handlers, and only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.getsignal(sig) for sig in SIGNALS}
    mine = [sig for sig, h in old.items() if h in (signal.SIG_DFL, None)]
    for sig in mine:
        signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig in mine:
            signal.signal(sig, old[sig])
