"""`prepare_run` claims its folder as a training run before it writes the split."""

from __future__ import annotations

import pytest

from e2net_eval.errors import InputError
from e2net_eval.training.turns import prepare_run
from e2net_eval.util.outdir import read_manifest


def test_prepare_run_marks_a_new_folder_as_a_training_run(lits6_phantom, tmp_path):
    run = tmp_path / "train"
    prepare_run(lits6_phantom, run, cache_dir=tmp_path / "cache")
    assert read_manifest(run)["kind"] == "train-run"
    assert (run / "split.json").is_file()
    prepare_run(lits6_phantom, run, cache_dir=tmp_path / "cache")  # again: its own folder


def test_prepare_run_refuses_a_folder_that_is_not_a_training_run(lits6_phantom, tmp_path):
    run = tmp_path / "mine"
    run.mkdir()
    (run / "notes.txt").write_text("my files")
    with pytest.raises(InputError, match="not a train-run folder"):
        prepare_run(lits6_phantom, run, cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in run.iterdir() if not p.name.startswith(".")) == ["notes.txt"]
