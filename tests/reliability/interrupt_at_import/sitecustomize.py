"""Test hook (on PYTHONPATH of one test's subprocesses only): Ctrl-C at a chosen import.

E2NET_TEST_SIGINT_AT_IMPORT="<module>": when that module is about to be imported, the
process sends itself SIGINT, as a user pressing Ctrl-C during start-up would; Python's
handler raises KeyboardInterrupt there. Processes without the variable are untouched.
"""

from __future__ import annotations

import importlib.abc
import os
import signal
import sys

_TARGET = os.environ.get("E2NET_TEST_SIGINT_AT_IMPORT")


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == _TARGET:
            sys.meta_path.remove(self)
            # a parent that ignores SIGINT (a test run after another test changed it) would
            # hand that on: Ctrl-C in a terminal always reaches Python's own handler
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.kill(os.getpid(), signal.SIGINT)
        return None


if _TARGET:
    sys.meta_path.insert(0, _Finder())
