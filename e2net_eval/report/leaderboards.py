"""The paper's published Tables 1-3, read from `leaderboards/*.json` and checked.

Published numbers live as data, never in code: reports and `e2net-eval leaderboard` read
them from here. Values are as printed in the paper (percent for Dice, a fraction for the
tumour-burden RMSE); a cell printed as "-" is None.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from e2net_eval.errors import InputError
from e2net_eval.util.jsonio import load_json


def _leaderboard_dir() -> Path:
    """`leaderboards/` of the source tree, else the copy a wheel installs under the prefix."""
    in_tree = Path(__file__).resolve().parents[2] / "leaderboards"
    installed = Path(sys.prefix) / "share" / "e2net-eval" / "leaderboards"
    return in_tree if (in_tree / "table1.json").is_file() or not installed.is_dir() else installed


LEADERBOARD_DIR = _leaderboard_dir()
TABLES = (1, 2, 3)
MISSING = "-"

_TABLE_KEYS = {"table", "caption", "source", "dataset", "split", "split_note", "columns", "rows"}
_COLUMN_KEYS = {"key", "label", "definition", "unit", "decimals", "higher_is_better"}
_COLUMN_KEYS |= {"summary_key", "scale"}
_ROW_KEYS = {"method", "reference", "citation", "values"}


def table_path(number: int, root: str | Path | None = None) -> Path:
    """Path of `leaderboards/table<number>.json` (under `root` when given)."""
    return Path(root or LEADERBOARD_DIR) / f"table{number}.json"


def load_table(number: int, root: str | Path | None = None) -> dict[str, Any]:
    """Load and check one published table (the rules of `leaderboards/schema.json`)."""
    path = table_path(number, root)
    if not path.is_file():
        raise InputError(f"no leaderboard file for table {number}", path=path)
    try:
        table = load_json(path)
    except ValueError as exc:
        raise InputError(f"invalid JSON: {exc}", path=path) from exc
    validate_table(table, path)
    return table


def validate_table(table: Any, path: str | Path = "<table>") -> None:
    """Raise InputError unless `table` follows the leaderboard schema."""

    def fail(msg: str) -> None:
        raise InputError(msg, path=path)

    if not isinstance(table, dict) or not _TABLE_KEYS <= set(table):
        fail(f"a table needs the keys {sorted(_TABLE_KEYS)}")
    keys = []
    for col in table["columns"]:
        if not isinstance(col, dict) or not _COLUMN_KEYS <= set(col):
            fail(f"a column needs the keys {sorted(_COLUMN_KEYS)}")
        if not isinstance(col["decimals"], int) or not isinstance(col["higher_is_better"], bool):
            fail(f"column {col['key']}: decimals must be an integer, higher_is_better a boolean")
        keys.append(col["key"])
    if len(set(keys)) != len(keys):
        fail("duplicate column keys")
    for row in table["rows"]:
        if not isinstance(row, dict) or not _ROW_KEYS <= set(row):
            fail(f"a row needs the keys {sorted(_ROW_KEYS)}")
        if set(row["values"]) != set(keys):
            fail(f"row {row['method']!r}: values must have exactly the column keys {keys}")
        for key, value in row["values"].items():
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                fail(f"row {row['method']!r}, column {key}: a number or null, got {value!r}")
        if row["reference"] is not None and not isinstance(row["reference"], int):
            fail(f"row {row['method']!r}: reference must be an integer or null")


def format_value(value: float | None, column: dict[str, Any]) -> str:
    """The cell as the paper prints it: fixed decimals, "-" when missing."""
    return MISSING if value is None else f"{value:.{column['decimals']}f}"


def method_label(row: dict[str, Any]) -> str:
    """Method name with its bibliography number, as in the paper ("H-DenseUNet [18]")."""
    return row["method"] if row["reference"] is None else f"{row['method']} [{row['reference']}]"


def table_cells(table: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows of strings) for printing; a "Group" column first when rows are grouped."""
    grouped = any("group" in row for row in table["rows"])
    header = (["Group"] if grouped else []) + ["Method"] + [c["label"] for c in table["columns"]]
    body = []
    for row in table["rows"]:
        cells = [row.get("group", "")] if grouped else []
        cells.append(method_label(row))
        cells += [format_value(row["values"][c["key"]], c) for c in table["columns"]]
        body.append(cells)
    return header, body


def render_text(table: dict[str, Any]) -> str:
    """A plain-text rendering: caption, split, aligned columns, column definitions."""
    header, body = table_cells(table)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    n_text = 2 if header[0] == "Group" else 1

    def line(cells: list[str]) -> str:
        parts = [
            c.ljust(w) if i < n_text else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [
        f"Table {table['table']}. {table['caption']}",
        f"Split: {table['split']}. {table['split_note']}",
        "",
        line(header),
        line(["-" * w for w in widths]),
        *[line(r) for r in body],
        "",
        "Columns:",
        *[f"  {c['label']}: {c['definition']}" for c in table["columns"]],
        f"Source: {table['source']['paper']}; '-' = not reported.",
    ]
    return "\n".join(out) + "\n"
