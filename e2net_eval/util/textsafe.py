"""Names from other people's files (case ids, entry names, protocols, paths) written safely
into text formats: every Markdown writer escapes with `md_escape`, every CSV writer guards
its cells with `csv_cell` and every CSV reader of ours undoes it with `csv_uncell` (HTML
and LaTeX escape in `report.tables`).
"""

from __future__ import annotations

import re

#: Markdown or HTML syntax inside a line. `_` is left alone: inside a word it is no
#: emphasis, and names and paths are full of it.
_MD_SPECIAL = re.compile(r"([\\`*\[\]|<>&$])")
#: Line breaks and other control characters (C0, DEL, C1, Unicode line/paragraph separators)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
#: Characters a spreadsheet reads as the start of a formula (OWASP "CSV injection"), and
#: the guard's own quote, so that guarding can be undone exactly.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
#: A plain decimal number (what repr(float) and str(int) write), left unguarded.
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|nan)", re.IGNORECASE)


def md_escape(text: object) -> str:
    """`text` as one line of literal Markdown text: control characters (newlines included)
    become a space, Markdown and HTML syntax characters are backslash-escaped."""
    one_line = _CONTROL.sub(" ", str(text))
    return _MD_SPECIAL.sub(r"\\\1", one_line)


def _is_number(text: str) -> bool:
    return _NUMBER.fullmatch(text) is not None


def csv_cell(value: object) -> object:
    """A CSV cell that no spreadsheet runs as a formula: a text starting with a
    `_FORMULA_START` character gets a leading ``'``, unless it is a number (``-0.5``)."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    return value if _is_number(value) else "'" + value


def csv_uncell(text: str) -> str:
    """The text `csv_cell` guarded (a read cell back to the name that was written)."""
    if len(text) > 1 and text[0] == "'" and text[1] in _FORMULA_START:
        return text[1:]
    return text
