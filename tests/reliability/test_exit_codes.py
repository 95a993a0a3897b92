"""Exit code 1 means "regress found a regression" and nothing else (issue 11, item 10)."""

from __future__ import annotations

from tests.helpers.reliability import run_proc


def test_exit_code_1_is_only_a_regression(data, tmp_path):
    """A crash (here an injected one) is exit 3 with 'internal error', never regress's 1."""
    args = ("datasets", "convert", data / "lits", tmp_path / "out")
    res = run_proc(*args, fault="convert.case:raise")
    assert res.returncode == 3, res.stderr
    assert "internal error" in res.stderr and "InjectedFault" in res.stderr
    assert not (tmp_path / "out").exists()
    res = run_proc(*args, "--no-such-option")
    assert res.returncode == 2
