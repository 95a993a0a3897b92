"""SIGTERM (and SIGHUP) as a clean exit: ``finally`` blocks run, temporaries are removed.

Python's default for SIGTERM ends the process at once, so the ``finally`` of a half-written
output folder never runs and its temporary stays on disk. `graceful_termination` turns the
signal into ``SystemExit(128 + signal)`` (143 for SIGTERM, the shell's convention) raised
where the main thread is, for as long as the block runs; worker processes forked meanwhile
inherit the handler and end the same way.
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

    Only where the handlers are still Python's defaults (a caller that installed its own keeps
    it) and only in the main thread (elsewhere signals cannot be handled).
    """
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
