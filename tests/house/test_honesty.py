"""Checks that keep the project honest about itself: tests that can fail, declared files
that exist, documented devices that work, and README figures that match the docs."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement

from e2net_eval.errors import InputError

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
SELF = Path(__file__).resolve()


def _toml():
    """tomllib (Python >= 3.11), else tomli (a test dependency on 3.10)."""
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    import tomli

    return tomli


def _test_sources() -> list[tuple[Path, str]]:
    return [(p, p.read_text(encoding="utf-8")) for p in TESTS.rglob("*.py") if p != SELF]


def test_no_skip_guard_that_cannot_skip_or_hides_our_own_failures():
    """`hasattr` on a package with a lazy `__getattr__` is always true (the guard never
    skips), and `importorskip` of our own module turns a broken import into a skip."""
    hasattr_guard = re.compile(r"skipif\([^)]*hasattr\(\s*e2net_eval")
    own_importorskip = re.compile(r"importorskip\(\s*[\"'](e2net_eval|reference_models)")
    found = [
        f"{p.relative_to(REPO)}: {m.group(0)}"
        for p, text in _test_sources()
        for rx in (hasattr_guard, own_importorskip)
        for m in rx.finditer(text)
    ]
    assert not found, found


def test_declared_test_dependencies_are_imported_never_skipped():
    """A package the `test` extra declares is installed wherever the tests run: an
    `importorskip` of it (or of tomllib, standard from 3.11) would turn a broken
    installation into skips."""
    extra = _toml().loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    declared = {
        re.split(r"[<>=;\[ ]", req, maxsplit=1)[0].lower().replace("-", "_")
        for req in extra["project"]["optional-dependencies"]["test"]
    }
    assert "medpy" in declared
    skipping = re.compile(r"importorskip\(\s*[\"']([\w.]+)")
    found = [
        f"{p.relative_to(REPO)}: importorskip({m.group(1)!r})"
        for p, text in _test_sources()
        for m in skipping.finditer(text)
        if m.group(1).split(".")[0].lower() in declared | {"tomllib", "tomli"}
    ]
    assert not found, found


#: The outside implementations the metric tests agree with (distribution: module).
PEERS = {
    "medpy": "medpy",
    "monai": "monai",
    "surface-distance": "surface_distance",
    "panoptica": "panoptica",
}


def _test_extra() -> list[Requirement]:
    config = _toml().loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return [Requirement(r) for r in config["project"]["optional-dependencies"]["test"]]


def test_peer_implementations_are_required_and_import():
    """A missing peer is a failure, never a skip: each is in the `test` extra and imports."""
    declared = {req.name.lower().replace("_", "-") for req in _test_extra()}
    assert set(PEERS) <= declared, sorted(set(PEERS) - declared)
    for module in PEERS.values():
        importlib.import_module(module)


def test_every_test_dependency_is_installed():
    """Every requirement of the `test` extra that applies here is installed, in its range."""
    wrong = []
    for req in _test_extra():
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            version = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            wrong.append(f"{req}: not installed")
            continue
        if not req.specifier.contains(version, prereleases=True):
            wrong.append(f"{req}: {version} installed")
    assert not wrong, wrong


def test_ci_runs_the_slow_tests_after_the_default_run():
    """The slow tests are deselected by default; CI runs them as a second step."""
    lines = [ln.strip() for ln in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    default = next(i for i, ln in enumerate(lines) if ln.endswith("&& pytest"))
    slow = next(i for i, ln in enumerate(lines) if ln.startswith("pytest -m slow"))
    assert default < slow


def _imported(text: str) -> list[str]:
    """Module names a source imports, relative ones with their leading dots (code only:
    an import spelled inside a string is not one)."""
    names = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def test_tests_import_their_helpers_one_way():
    """A module of tests/ is imported as `tests.<folder>.<module>` (helpers from
    `tests.helpers`): no relative or bare import of it, and no edit of the interpreter's
    module path (a subprocess gets the repository on its PYTHONPATH instead)."""
    ours = {p.stem for p in TESTS.rglob("*.py")} | {p.name for p in TESTS.iterdir() if p.is_dir()}
    ours -= {"__init__", "sitecustomize"}
    path_edit = re.compile(r"\bsys\s*\.\s*path\b")
    found = [
        f"{p.relative_to(REPO)}: {name}"
        for p, text in _test_sources()
        for name in _imported(text)
        if name.startswith(".") or name.split(".")[0] in ours
    ]
    found += [
        f"{p.relative_to(REPO)}: path edit" for p, text in _test_sources() if path_edit.search(text)
    ]
    assert not found, found


def test_conftest_fixture_names_mean_one_thing():
    """A fixture of a conftest.py (seen by a whole folder) shares its name with no other
    fixture (two different `phantom_root`s once did)."""
    fixture = re.compile(r"^@pytest\.fixture\b.*\n(?:@.*\n)*def (\w+)\(", re.M)
    defined: dict[str, list[str]] = {}
    for p, text in _test_sources():
        for m in fixture.finditer(text):
            defined.setdefault(m.group(1), []).append(p.relative_to(REPO).as_posix())
    shared = {n for n, where in defined.items() if any(w.endswith("conftest.py") for w in where)}
    doubled = {n: defined[n] for n in shared if len(defined[n]) > 1}
    assert not doubled, doubled


def test_no_machine_paths_in_tests():
    """Tests run from any clone: no absolute path of one machine."""
    machine_path = re.compile(r"[\"'](/work/|/home/|/Users/|/tmp/house)")
    found = [
        f"{p.relative_to(REPO)}: {m.group(0)}"
        for p, text in _test_sources()
        for m in machine_path.finditer(text)
    ]
    assert not found, found


def test_lazy_package_attributes_are_real_or_absent():
    """The lazy packages answer `hasattr` truthfully: known names resolve, others do not."""
    import e2net_eval.inference
    import e2net_eval.metrics
    import e2net_eval.training
    import reference_models

    assert callable(e2net_eval.training.train) and callable(e2net_eval.inference.predict)
    assert callable(e2net_eval.metrics.evaluate) and callable(reference_models.objective)
    for module in (e2net_eval.training, e2net_eval.inference, e2net_eval.metrics, reference_models):
        assert not hasattr(module, "no_such_thing")


def test_declared_package_data_exists():
    """Every file pyproject.toml ships as package data (e.g. py.typed) is in the tree."""
    config = _toml().loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    declared = config["tool"]["setuptools"]["package-data"]
    assert declared
    for package, files in declared.items():
        for name in files:
            assert list((REPO / package.replace(".", "/")).glob(name)), f"{package}/{name}"


def test_readme_medpy_figure_is_the_docs_measurement():
    """The README's speed-up over medpy is the one docs/metrics.md measured on a quiet
    machine (the docs name the command and the machine)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    docs = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    quiet = docs[docs.index("### Measured on a quiet machine") :]
    measured = re.search(r"ours is (\d+)x faster", quiet).group(1)
    claims = re.findall(r"(\d+)x faster than medpy", readme)
    assert claims and set(claims) == {measured}, (claims, measured)


def test_cuda_n_device_is_resolved(monkeypatch):
    """`--device cuda:N` (advertised by every command) picks card N, or says it is absent."""
    from e2net_eval.runtime.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda", local_rank=1) == torch.device("cuda", 1)
    with pytest.raises(InputError, match="2 CUDA device"):
        resolve_device("cuda:2")
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a CPU machine")
@pytest.mark.parametrize(
    "args",
    [
        ("bench", "train", "--device", "cuda:1", "--steps", "1"),
        ("bench", "inference", "--device", "cuda:1"),
    ],
)
def test_cli_accepts_cuda_n_and_says_why_it_cannot(run_cli, args):
    code, _, err = run_cli(*args)
    assert code == 2
    assert "no CUDA device" in err and "Invalid value" not in err, err


def test_cli_rejects_a_malformed_device(run_cli):
    code, _, err = run_cli("train", "stage1", "--data", ".", "-o", "x", "--device", "gpu:1")
    assert code == 2 and "is not a device" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a CPU machine")
def test_ablation_checks_its_device_before_any_work(run_cli, tmp_path):
    code, _, err = run_cli("ablation", "-o", tmp_path / "run", "--device", "cuda:1")
    assert code == 2 and "no CUDA device" in err
    assert not (tmp_path / "run").exists()


def _departure_rows(doc: str) -> list[str]:
    """First cells of the "paper says / we do / why" table of a docs page."""
    text = (REPO / "docs" / doc).read_text(encoding="utf-8")
    start = text.index("| | paper says | we do | why |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append(line.split("|")[1].strip())
    return rows


def test_every_known_departure_from_the_paper_is_a_row():
    """The departures found by reading the paper against the code (issues 9 and 15) each
    have a row in the table of docs/models.md or docs/training.md."""
    models = _departure_rows("models.md")
    training = _departure_rows("training.md")
    for row in (
        "encoder initialisation",
        "distance target",
        "DCFF convolutions",
        "BCE reduction",
        "IoU over what",
        "IoU smoothing",
    ):
        assert row in models, row
    for row in (
        "train/validation split",
        "stage-1 samples",
        "stage-2 samples",
        "small profile",
        '"stable" loss and the stop',
        "precision on GPUs",
        "memory layout",
        "stage-2 crop at inference",
        "tumour outside the liver",
    ):
        assert row in training, row


def test_no_text_says_the_paper_used_imagenet_weights():
    """The paper names Res2Net-50 as its backbone and says nothing about pre-training."""
    claim = re.compile(
        r"paper (starts|started|uses|used) (from )?ImageNet|the paper starts from them"
    )
    found = [
        f"{p.relative_to(REPO)}: {m.group(0)}"
        for p in [*REPO.glob("docs/*.md"), REPO / "README.md", *REPO.glob("reference_models/*.py")]
        for m in claim.finditer(p.read_text(encoding="utf-8"))
    ]
    assert not found, found
