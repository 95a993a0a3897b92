"""Strict JSON both ways: NaN and infinity are written as ``null`` (and counted), so any parser
reads the file; reading refuses bare ``NaN``/``Infinity``, which are not JSON."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from e2net_eval.util.atomic import write_text


def sanitize(obj: Any) -> tuple[Any, int]:
    """Return (a JSON-safe copy of `obj`, the number of non-finite floats replaced by None).
    NumPy arrays and scalars become lists and numbers (numpy is not imported here)."""
    count = 0
    np = sys.modules.get("numpy")

    def walk(x: Any) -> Any:
        nonlocal count
        if isinstance(x, dict):
            return {str(k): walk(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v) for v in x]
        if np is not None and isinstance(x, np.ndarray):
            return [walk(v) for v in x.tolist()]
        if np is not None and isinstance(x, np.bool_):
            return bool(x)
        if np is not None and isinstance(x, np.integer):
            return int(x)
        if isinstance(x, float) or (np is not None and isinstance(x, np.floating)):
            f = float(x)
            if not math.isfinite(f):
                count += 1
                return None
            return f
        if isinstance(x, Path):
            return str(x)
        return x

    return walk(obj), count


def dump_json(path: str | Path, obj: Any, *, count_key: str | None = None) -> int:
    """Write `obj` as strict JSON atomically; return how many non-finite values became null
    (also stored in the top-level dict under `count_key`, when given)."""
    clean, count = sanitize(obj)
    if count_key is not None and isinstance(clean, dict):
        clean[count_key] = count
    write_text(path, json.dumps(clean, indent=2, allow_nan=False) + "\n")
    return count


def _no_constant(name: str) -> Any:
    raise ValueError(f"bare {name} is not JSON (an undefined value is written null)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range (not finite)")
    return value


def _integer(text: str) -> int:
    value = int(text)  # beyond Python's digit limit: ValueError
    try:
        float(value)
    except OverflowError:
        raise ValueError(f"integer of {len(text)} digits is out of range") from None
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """An object whose keys are distinct: a repeated key is ambiguous, so an error."""
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def loads_strict(text: str) -> Any:
    """Parse JSON text strictly: bare NaN/Infinity, numbers that overflow to infinity, a
    repeated key and nesting past the recursion limit are a ValueError."""
    try:
        return json.loads(
            text,
            parse_constant=_no_constant,
            parse_float=_finite,
            parse_int=_integer,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def load_json(path: str | Path) -> Any:
    """Read a JSON file strictly (see `loads_strict`); ValueError for bad JSON."""
    with open(path, encoding="utf-8") as fh:
        return loads_strict(fh.read())
