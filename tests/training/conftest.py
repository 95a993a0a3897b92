"""Fixtures of the training and inference tests: a small LiTS-layout phantom."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def phantom_root(tmp_path_factory):
    """Six phantom cases in the LiTS layout (seed 0): 5 train / 1 validation by the split."""
    from e2net_eval.data import write_phantom

    root = tmp_path_factory.mktemp("phantom") / "lits"
    write_phantom(root, "lits", 6, seed=0)
    return root
