"""Errors the command line turns into exit codes: `InputError` 2 (`ReadError`: a file that
could not be read or decoded), `RegressionFound` 1, `RunFailed` 4. See docs/reliability.md,
"Exit codes".
"""

from __future__ import annotations

import re
from pathlib import Path

#: C0 and C1 control characters, DEL, and lone surrogates (undecodable file-name bytes).
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


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
        super().__init__(printable(" ".join(text.split())))  # always one line


def printable(text: str) -> str:
    """`text` safe for a terminal: control characters (an ESC) and a lone surrogate (a byte of a
    non-UTF-8 file name) as ``\\xNN``."""
    return _UNPRINTABLE.sub(_escaped, text)


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00 if 0xDC80 <= code <= 0xDCFF else code:02x}"


class ReadError(InputError):
    """A file that cannot be read or decoded: missing, a directory, a symlink loop, permission
    denied, empty, truncated, corrupt, an unsupported format, or larger than memory allows."""


class RegressionFound(Exception):
    """A metric regressed past its tolerance (exit code 1)."""


class RunFailed(Exception):
    """Jobs of a run failed (exit code 4, see `e2net_eval.cli`); the message names each job
    and its log."""
