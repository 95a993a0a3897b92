"""Fixtures of the reliability tests: small generated data sets and a trained run."""

from __future__ import annotations

import pytest

from tests.helpers.reliability import KW, TRAIN


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """Clean generated data sets: lits (3 cases, .nii), lits_gz (2), ircadb, ircadb_zip (2)."""
    from e2net_eval.data import write_phantom
    from e2net_eval.data.phantom import PhantomSpec

    root = tmp_path_factory.mktemp("reliability")
    write_phantom(root / "lits", PhantomSpec("lits", 3, **KW))
    write_phantom(root / "lits_gz", PhantomSpec("lits", 2, gzip=True, **KW))
    write_phantom(root / "ircadb", PhantomSpec("ircadb", 2, **KW))
    write_phantom(root / "ircadb_zip", PhantomSpec("ircadb", 2, zipped=True, **KW))
    return root


@pytest.fixture(scope="session")
def train_data(tmp_path_factory):
    """Four 128x128 phantom cases (LiTS layout), the smallest the small profile trains on."""
    from e2net_eval.data import write_phantom
    from e2net_eval.data.phantom import PhantomSpec

    root = tmp_path_factory.mktemp("train") / "lits"
    write_phantom(root, PhantomSpec("lits", 4, seed=5, slices=(6, 8)))
    return root


@pytest.fixture(scope="session")
def one_step_run(train_data, tmp_path_factory):
    """A run folder with stage1 trained for one step (weights to predict with)."""
    from tests.helpers.reliability import run_proc

    run = tmp_path_factory.mktemp("run") / "run"
    res = run_proc("train", "stage1", "--data", train_data, "-o", run, *TRAIN)
    assert res.returncode == 0, res.stderr
    return run
