"""Issue 20: no function over a screen (60 lines, def line to last line, decorators excluded,
docstring included) and none with more than 8 parameters (self/cls not counted; click
commands exempt: their parameters are the command's options), anywhere in `e2net_eval/` and
`reference_models/`.

What is over a limit today is listed below with its current size. The lists may only
shrink: a listed function that got shorter, was split or deleted must have its entry
updated or removed, and a listed function may not grow."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("e2net_eval", "reference_models")
MAX_LINES = 60
MAX_PARAMS = 8

#: "path::qualname" -> lines, for functions longer than MAX_LINES today (may only shrink).
LONG_ALLOWED: dict[str, int] = {}

#: "path::qualname" -> parameters, for functions with more than MAX_PARAMS today.
MANY_PARAMS_ALLOWED: dict[str, int] = {}


def _is_click_command(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Decorated with ``click.command``/``click.group`` or ``<group>.command``/``.group``."""
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if isinstance(target, ast.Attribute) and target.attr in ("command", "group"):
            return True
    return False


def _n_params(node: ast.FunctionDef | ast.AsyncFunctionDef, in_class: bool) -> int:
    a = node.args
    names = [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, (a.vararg, a.kwarg))]
    if in_class and names and names[0].arg in ("self", "cls"):
        names = names[1:]
    return len(names)


def _functions(tree: ast.AST, prefix: str = "", in_class: bool = False):
    """Yield (qualname, node, in_class) for every function, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node, in_class
            yield from _functions(node, f"{prefix}{node.name}.", False)
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.", True)
        else:
            yield from _functions(node, prefix, in_class)


def measure() -> tuple[dict[str, int], dict[str, int]]:
    """Every function over a limit: ({key: lines}, {key: parameters}); key "path::qualname"."""
    long: dict[str, int] = {}
    many: dict[str, int] = {}
    for top in SOURCES:
        for path in sorted((REPO / top).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for qualname, node, in_class in _functions(tree):
                key = f"{path.relative_to(REPO).as_posix()}::{qualname}"
                n_lines = node.end_lineno - node.lineno + 1
                if n_lines > MAX_LINES:
                    long[key] = max(n_lines, long.get(key, 0))
                n = _n_params(node, in_class)
                if n > MAX_PARAMS and not _is_click_command(node):
                    many[key] = max(n, many.get(key, 0))
    return long, many


def _problems(found: dict[str, int], allowed: dict[str, int], what: str, limit: int) -> list[str]:
    out = []
    for key, size in sorted(found.items()):
        if key not in allowed:
            out.append(
                f"{key}: {size} {what} (limit {limit}): split it or give it an options object"
            )
        elif size > allowed[key]:
            out.append(f"{key}: grew from {allowed[key]} to {size} {what}: shrink it back")
    for key, size in sorted(allowed.items()):
        if key not in found:
            out.append(f"{key}: now within {limit} {what} or gone: remove it from the allow-list")
        elif found[key] < size:
            out.append(
                f"{key}: shrank from {size} to {found[key]} {what}: "
                f"set its allow-list entry to {found[key]}"
            )
    return out


def test_no_function_over_60_lines():
    long, _ = measure()
    problems = _problems(long, LONG_ALLOWED, "lines", MAX_LINES)
    assert not problems, "function length (LONG_ALLOWED):\n  " + "\n  ".join(problems)


def test_no_function_with_more_than_8_parameters():
    _, many = measure()
    problems = _problems(many, MANY_PARAMS_ALLOWED, "parameters", MAX_PARAMS)
    assert not problems, "parameter count (MANY_PARAMS_ALLOWED):\n  " + "\n  ".join(problems)


def test_the_measure_counts_what_it_says(tmp_path):
    """Decorators are not lines; self/cls are not parameters; click commands are exempt."""
    source = (
        "@deco\n"
        "def f(a, b, *args, c, **kw):\n"
        "    pass\n"
        "class K:\n"
        "    def m(self, a, b, c, d, e, f, g, h, i):\n"
        "        def inner(x): return x\n"
        "@cli.command()\n"
        "def cmd(a, b, c, d, e, f, g, h, i):\n"
        "    pass\n"
    )
    found = {
        q: (n.end_lineno - n.lineno + 1, _n_params(n, c))
        for q, n, c in _functions(ast.parse(source))
    }
    assert found == {"f": (2, 5), "K.m": (2, 9), "K.m.inner": (1, 1), "cmd": (2, 9)}
    cmd = next(n for q, n, _ in _functions(ast.parse(source)) if q == "cmd")
    assert _is_click_command(cmd)
