"""The layering of docs/architecture.md, checked on every import statement (top level or
inside a function): data flows one way and nothing calls up."""

from __future__ import annotations

import ast
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


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


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
        assert stages <= {"data"}, (path, stages)  # rundir makes a split with the data layer
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


def test_no_training_function_over_60_lines():
    """Issue 12: the trainer is an object of short steps; a function that grows past a
    screen (60 lines, decorators excluded, docstring included) fails here."""
    long = []
    for path in sorted((PKG / "training").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n_lines = node.end_lineno - node.lineno + 1
                if n_lines > 60:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({n_lines})")
    assert long == []
