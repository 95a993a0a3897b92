"""The layering of docs/architecture.md, checked on every import statement (top level or
inside a function, and `importlib.import_module`'s names): data flows one way and nothing
calls up; no import circles (issue 20); no deferred import of what a module already imports
at module level. The allow-lists of today's circles and deferred imports may only shrink."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "e2net_eval"

#: What each area may import from e2net_eval (besides itself, util/, errors, rundir and
#: the package root). reference_models is allowed everywhere but may not import e2net_eval.
ALLOWED = {
    "data": set(),
    "runtime": {"data"},
    "training": {"data", "runtime"},
    "inference": {"data", "runtime"},
    "metrics": {"data"},
    "scores": {"metrics"},
    "report": {"data", "metrics", "scores"},
    "workflows": {"data", "runtime", "training", "inference", "metrics", "scores", "report"},
    "commands": {
        "data",
        "runtime",
        "training",
        "inference",
        "metrics",
        "scores",
        "report",
        "workflows",
    },
    "util": set(),
}
SHARED = {"util", "errors", "rundir", "__init__"}


SOURCES = ("e2net_eval", "reference_models")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


#: module name -> source file, for every module of the package and the models.
MODULES = {_module_name(p): p for top in SOURCES for p in sorted((REPO / top).rglob("*.py"))}


@dataclass(frozen=True)
class Import:
    """One import of `target` (a module of ours, or an outside name) on `line`; `function`
    is the enclosing function's qualified name for a deferred import, "" at module level."""

    target: str
    line: int
    function: str


def _ours(name: str) -> str | None:
    """The longest prefix of dotted `name` that is one of our modules."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in MODULES:
            return ".".join(parts[:n])
    return None


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(test)


def _dict_literals(tree: ast.Module) -> dict[str, list[str]]:
    """Module-level ``NAME = {...: "string", ...}`` tables (lazy-import maps)."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            values = [v.value for v in node.value.values if isinstance(v, ast.Constant)]
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = [v for v in values if isinstance(v, str)]
    return out


def _import_module_targets(call: ast.Call, module: str, tables: dict[str, list[str]]):
    """``importlib.import_module(...)``: a string literal, or a lazy-import table looked up
    (``_LAZY[name]``, optionally as ``f"{__name__}.{_LAZY[name]}"``)."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name != "import_module" or not call.args:
        return []
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return [arg.value]
    prefix = f"{module}." if "{__name__}." in ast.unparse(arg) else ""
    tables_used = [n.id for n in ast.walk(arg) if isinstance(n, ast.Name) and n.id in tables]
    return [prefix + value for t in tables_used for value in tables[t]]


def imports(module: str, source: str | None = None) -> list[Import]:
    """Every import statement of `module` (top level or inside a function, not under
    ``if TYPE_CHECKING``) and every ``importlib.import_module`` it can name. ``from pkg
    import name`` imports ``pkg.name`` if that is a module, else ``pkg``. `source`: read
    this text as the module's instead of its file."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8") if source is None else source)
    tables = _dict_literals(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, scope: str, function: str) -> None:
        if _type_checking(node):
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            scope = f"{scope}{node.name}."
            if not isinstance(node, ast.ClassDef):
                function = scope[:-1]
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        elif isinstance(node, ast.Call):
            targets = _import_module_targets(node, module, tables)
        for target in targets:
            found.append(Import(_ours(target) or target, node.lineno, function))
        for child in ast.iter_child_nodes(node):
            visit(child, scope, function)

    visit(tree, "", "")
    return found


def _imports(path: Path) -> set[str]:
    """The modules of ours that the file at `path` imports."""
    return {i.target for i in imports(_module_name(path)) if i.target in MODULES}


def _area(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "e2net_eval" and len(parts) > 1 else None


def test_no_upward_or_sideways_import():
    bad = []
    for area, allowed in ALLOWED.items():
        paths = (
            [PKG / f"{area}.py"] if (PKG / f"{area}.py").is_file() else (PKG / area).rglob("*.py")
        )
        for path in paths:
            for module in _imports(path):
                target = _area(module)
                if target is None or target == area or target in SHARED:
                    continue
                if target not in allowed:
                    bad.append(f"{path.relative_to(REPO)} imports {module}")
    assert not bad, bad


def test_inference_and_training_are_siblings():
    for a, b in (("inference", "training"), ("training", "inference")):
        for path in (PKG / a).rglob("*.py"):
            assert not any(m.startswith(f"e2net_eval.{b}") for m in _imports(path)), path


def test_shared_modules_and_models_import_no_stage():
    for path in [PKG / "rundir.py", PKG / "errors.py", *(PKG / "util").rglob("*.py")]:
        stages = {_area(m) for m in _imports(path)} - {None} - SHARED
        assert not stages, (path, stages)  # the split policy lives in data/split.py
    for path in (REPO / "reference_models").rglob("*.py"):
        assert not any(m.startswith("e2net_eval") for m in _imports(path)), path


def test_cli_knows_every_command_of_every_module():
    """cli.py's name -> module map matches what the command modules declare."""
    import importlib

    from e2net_eval import cli

    for mapping, attr in ((cli.COMMAND_MODULES, "COMMANDS"), (cli.BENCH_MODULES, "BENCH_COMMANDS")):
        declared = {}
        for path in (PKG / "commands").glob("*.py"):
            module = importlib.import_module(f"e2net_eval.commands.{path.stem}")
            for command in getattr(module, attr, []):
                declared[command.name] = path.stem
        assert declared == mapping


def test_the_import_reader_resolves_what_python_would():
    source = """
import importlib
from typing import TYPE_CHECKING
from . import dicom
from .case import LIVER
from ..errors import InputError
from e2net_eval.util import jsonio, reading
if TYPE_CHECKING:
    import torch
_LAZY = {"make_split": "split"}
def __getattr__(name):
    import numpy.linalg
    return importlib.import_module(f"{__name__}.{_LAZY[name]}")
class K:
    def g(self):
        importlib.import_module("e2net_eval.util.atomic")
"""
    assert {(i.target, i.function) for i in imports("e2net_eval.data", source)} == {
        ("importlib", ""),
        ("typing", ""),
        ("e2net_eval.data.dicom", ""),
        ("e2net_eval.data.case", ""),
        ("e2net_eval.errors", ""),
        ("e2net_eval.util.jsonio", ""),
        ("e2net_eval.util.reading", ""),
        ("numpy.linalg", "__getattr__"),
        ("e2net_eval.data.split", "__getattr__"),
        ("e2net_eval.util.atomic", "K.g"),
    }


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of ours it imports (anywhere in it)."""
    return {m: {i.target for i in imports(m) if i.target in MODULES} - {m} for m in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[frozenset[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            cut = stack.index(v)
            component = frozenset(stack[cut:])
            del stack[cut:]
            if len(component) > 1:
                out.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


#: The import circles of today (each a set of modules). May only shrink: the goal is none.
CYCLES_ALLOWED: list[set[str]] = []


def _describe(cycle: frozenset[str]) -> str:
    edges = {
        f"    {m} -> {i.target} (line {i.line}{', in ' + i.function if i.function else ''})"
        for m in cycle
        for i in imports(m)
        if i.target in cycle and i.target != m
    }
    return "\n".join(sorted(edges))


def test_no_import_cycles():
    """No circle among the modules of e2net_eval and reference_models, counting imports
    inside functions and importlib.import_module's names; a package importing its own
    submodules is no circle unless one of them imports the package back."""
    found = cycles(import_graph())
    allowed = [frozenset(c) for c in CYCLES_ALLOWED]
    problems = [f"new import circle:\n{_describe(c)}" for c in found if c not in allowed]
    problems += [
        f"circle {sorted(c)} is gone or changed: update CYCLES_ALLOWED"
        for c in allowed
        if c not in found
    ]
    assert not problems, "\n".join(problems)


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert cycles(graph) == [frozenset("abc")]


def _package(target: str) -> str:
    """What an import loads: our module itself, or an outside distribution's top package."""
    return target if target in MODULES else target.split(".")[0]


def redundant_deferred_imports() -> dict[str, int]:
    """ "path::function::package" -> line, for each import inside a function of a package
    that its module already imports at module level (it defers nothing)."""
    out = {}
    for module, path in MODULES.items():
        found = imports(module)
        top = {_package(i.target) for i in found if not i.function}
        for i in found:
            if i.function and _package(i.target) in top:
                rel = path.relative_to(REPO).as_posix()
                out[f"{rel}::{i.function}::{_package(i.target)}"] = i.line
    return out


#: Today's redundant deferred imports ("path::function::package"). May only shrink.
REDUNDANT_DEFERRED_ALLOWED: set[str] = set()


def test_no_deferred_import_of_what_the_module_already_imports():
    found = redundant_deferred_imports()
    problems = [
        f"{key} (line {line}): already imported at module level; import it there"
        for key, line in sorted(found.items())
        if key not in REDUNDANT_DEFERRED_ALLOWED
    ]
    problems += [
        f"{key}: gone: remove it from REDUNDANT_DEFERRED_ALLOWED"
        for key in sorted(REDUNDANT_DEFERRED_ALLOWED - set(found))
    ]
    assert not problems, "\n".join(problems)
