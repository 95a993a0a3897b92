"""Shared test set-up: one torch thread, passive OpenMP waits, CLI runner helper."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture
def run_cli():
    """Run `e2net-eval ARGS...` in-process; returns (exit_code, stdout, stderr)."""
    from e2net_eval.cli import main

    def _run(*args: str) -> tuple[int, str, str]:
        import contextlib
        import io

        out, err = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        return code, out.getvalue(), err.getvalue()

    return _run


@pytest.fixture(scope="session")
def lits6_phantom(tmp_path_factory):
    """Six phantom cases in the LiTS layout (seed 0): 5 train / 1 validation by the split.
    Written once per session for the training, inference and cluster end-to-end tests;
    read-only for its users."""
    from e2net_eval.data import write_phantom
    from e2net_eval.data.phantom import PhantomSpec

    root = tmp_path_factory.mktemp("phantom6") / "lits"
    write_phantom(root, PhantomSpec("lits", 6, seed=0))
    return root
