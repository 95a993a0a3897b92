"""tools/mutate.py works: a known mutant is killed by its test and its file comes back
byte-identical, an equivalent change survives, a stale snippet is reported, and the file is
restored when the run is interrupted. Runs on a copy of the package, never on this tree."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("mutate_tool", REPO / "tools" / "mutate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tool():
    return _tool()


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """The package, pyproject and one test file: enough to run M10's first test file."""
    root = tmp_path_factory.mktemp("clone")
    shutil.copytree(
        REPO / "e2net_eval", root / "e2net_eval", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    (root / "tests" / "metrics").mkdir(parents=True)
    shutil.copy2(REPO / "tests" / "conftest.py", root / "tests" / "conftest.py")
    shutil.copy2(REPO / "tests" / "metrics" / "test_hand_cases.py", root / "tests" / "metrics")
    return root


def _m10(tool):
    m10 = next(m for m in tool.MUTANTS if m.name == "M10")
    return replace(m10, tests=("tests/metrics/test_hand_cases.py",))


def test_a_known_mutant_is_killed_and_its_file_restored(tool, clone):
    m10 = _m10(tool)
    path = clone / m10.path
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    result = tool.run_mutant(m10, timeout=300, root=clone)
    assert result.status == "killed", result.detail
    assert "test_nsd_counts_a_distance_equal_to_the_tolerance_as_within" in result.detail
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


def test_an_equivalent_change_survives_and_a_stale_one_is_reported(tool, clone):
    m10 = _m10(tool)
    same = replace(m10, replacement=m10.original + "  # same code")
    assert tool.run_mutant(same, timeout=300, root=clone).status == "survived"
    gone = replace(m10, original="no such line in surface.py")
    assert tool.run_mutant(gone, timeout=300, root=clone).status == "stale"
    assert (
        tool.summarise([tool.Result(m10, "killed", 1.0), tool.Result(m10, "survived", 1.0)])[2]
        == 0.5
    )


def test_the_file_is_restored_when_interrupted(tool, clone):
    m10 = _m10(tool)
    path = clone / m10.path
    before = path.read_bytes()
    with pytest.raises(KeyboardInterrupt), tool.mutated(m10, clone):
        assert path.read_bytes() != before
        raise KeyboardInterrupt
    assert path.read_bytes() == before


def test_every_mutant_names_its_snippet_once_and_existing_tests():
    tool = _tool()
    names = [m.name for m in tool.MUTANTS]
    assert len(names) == len(set(names)) >= 60
    for m in tool.MUTANTS:
        text = (REPO / m.path).read_text(encoding="utf-8")
        assert text.count(m.original) == 1, m.name
        assert m.original != m.replacement, m.name
        assert all((REPO / t).is_file() for t in m.tests), m.name
