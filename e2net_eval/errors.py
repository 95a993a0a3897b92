"""Errors the command line turns into exit codes.

`InputError` (exit 2) is a usage or input problem: its message is one line that names the
case and the file. `RegressionFound` (exit 1) is a metric that got worse than allowed.
`RunFailed` (exit 1): jobs of a cluster run failed; one line per job with its log file.
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


class RegressionFound(Exception):
    """A metric regressed past its tolerance (exit code 1)."""


class RunFailed(Exception):
    """Jobs of a cluster run failed (exit code 1); the message names each job and its log."""
