"""Errors the command line turns into exit codes.

`InputError` (exit 2) is a usage or input problem: its message is one line that names the
case and the file. `ReadError` is the `InputError` of a file that could not be read or
decoded (every reader maps its library's failures to it). `RegressionFound` (exit 1) is a
metric that got worse than allowed; nothing else exits 1. `RunFailed` (exit 4): jobs of a
run failed (a cluster run); one line per job with its log file.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input: missing file, wrong shape or affine, unknown label, corrupt archive, NaN."""

    def __init__(self, message: str, *, case: str | None = None, path: str | Path | None = None):
        self.case = case
        self.path = None if path is None else str(path)
        parts = []
        if case is not None:
            parts.append(f"case {case}")
        if path is not None:
            parts.append(str(path))
        prefix = ": ".join(parts)
        text = f"{prefix}: {message}" if prefix else message
        super().__init__(" ".join(text.split()))  # always one line


class ReadError(InputError):
    """A file that cannot be read or decoded: missing, a directory, a symlink loop, permission
    denied, empty, truncated, corrupt, an unsupported format, or larger than memory allows."""


class RegressionFound(Exception):
    """A metric regressed past its tolerance (exit code 1)."""


class RunFailed(Exception):
    """Jobs of a run failed (exit code 4, see `e2net_eval.cli`); the message names each job
    and its log."""
