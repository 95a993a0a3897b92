"""Deterministic fault injection for the kill and crash tests: die at a named point.

``fault_point(name)`` does nothing unless ``E2NET_EVAL_FAULT`` names that point; the syntax
and the points: docs/reliability.md, "Fault injection".
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ENV = "E2NET_EVAL_FAULT"
READY_ENV = "E2NET_EVAL_FAULT_READY"
ACTIONS = ("kill", "term", "raise", "pause")

_hits: dict[str, int] = {}


class InjectedFault(RuntimeError):
    """Raised at a fault point with the ``raise`` action."""


def _parse(spec: str) -> list[tuple[str, int, str]]:
    out = []
    for item in filter(None, (p.strip() for p in spec.split(","))):
        point, _, action = item.partition(":")
        point, _, nth = point.partition("@")
        action = action or "kill"
        if action not in ACTIONS:
            raise ValueError(f"{ENV}: unknown action {action!r} in {item!r} (one of {ACTIONS})")
        out.append((point, int(nth) if nth else 1, action))
    return out


def fault_point(name: str) -> None:
    """Fire the fault named by ``$E2NET_EVAL_FAULT`` if it is this point's turn."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    wanted = [(n, a) for p, n, a in _parse(spec) if p == name]
    if not wanted:
        return
    _hits[name] = _hits.get(name, 0) + 1
    for nth, action in wanted:
        if _hits[name] == nth:
            _fire(name, action)


def _fire(name: str, action: str) -> None:
    if action == "raise":
        raise InjectedFault(f"injected fault at {name}")
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "term":
        os.kill(os.getpid(), signal.SIGTERM)
        return  # the handler (if any) runs at the next bytecode boundary
    ready = os.environ.get(READY_ENV)
    if ready:
        marker = Path(ready) / f"{name}.{os.getpid()}"
        tmp = marker.with_name(marker.name + ".part")
        tmp.write_text(str(os.getpid()))
        os.replace(tmp, marker)
    while True:  # pause: until a signal ends the process
        time.sleep(3600)
