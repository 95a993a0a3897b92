"""Fixtures of the training and inference tests: a small LiTS-layout phantom."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def phantom_root(lits6_phantom):
    """Six phantom cases in the LiTS layout (seed 0), shared with the cluster end-to-end
    tests (`tests/conftest.py`)."""
    return lits6_phantom
