"""What README and docs/cluster.md say about the cluster launcher matches the code."""

from __future__ import annotations

import re
from pathlib import Path

from e2net_eval import cli

REPO = Path(__file__).resolve().parents[2]


def _sentence(text: str, start: str) -> str:
    """The sentence of `text` that begins with `start`, on one line."""
    flat = " ".join(text.split())
    at = flat.index(start)
    return flat[at : flat.index(". ", at) + 1]


def test_readme_gives_the_exit_code_of_failed_cluster_jobs():
    codes = _sentence((REPO / "README.md").read_text(), "Exit codes everywhere")
    assert cli.RUN_FAILED == 4
    assert f"{cli.RUN_FAILED} cluster jobs that failed" in codes
    # exit 1 is regress's alone: no other outcome is listed with it
    one = re.search(r"\b1 ([^,]*)", codes).group(1)
    assert "regress" in one and "cluster" not in one
    cluster = (REPO / "docs" / "cluster.md").read_text()
    assert f"exits {cli.RUN_FAILED}" in " ".join(cluster.split())
