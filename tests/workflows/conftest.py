"""The CI gate's phantom, overlap and split, made once per session: the gate fixture
(`test_ci_gate.py`) resumes from them and `test_real_phantom_overlap_and_split` checks them."""

from __future__ import annotations

import shutil

import pytest

from e2net_eval.rundir import STATE_JSON

# the gate's ablation (test_ci_gate.CI_STEPS optimiser steps, every configuration, seed 0)
CI_STEPS = 300
GATE_ARGS = ("ablation", "--max-steps", str(CI_STEPS))
PREFIX_STEPS = ("data:lits", "data:ircadb", "overlap", "split")


@pytest.fixture(scope="session")
def gate_prefix(tmp_path_factory):
    """The gate's ablation run up to its split, with the real data layer (phantom of
    60 LiTS + 8 3DIRCADb cases, overlap found from the images, leak-free split) and
    stopped when its first training step would start. Read-only: copy it to resume."""
    import e2net_eval.inference
    import e2net_eval.metrics
    import e2net_eval.training
    from e2net_eval.cli import main
    from e2net_eval.util.jsonio import load_json
    from e2net_eval.workflows.launch import local
    from tests.workflows.test_ablation import Recorder

    run = tmp_path_factory.mktemp("gate-prefix") / "ci-gate"
    rec = Recorder()
    rec.fail_on = ("prepare_run", None)  # the first step after the split
    with pytest.MonkeyPatch.context() as mp:
        for mod, name in [
            (e2net_eval.training, "prepare_run"),
            (e2net_eval.training, "train"),
            (e2net_eval.inference, "predict"),
            (e2net_eval.metrics, "evaluate"),
        ]:
            mp.setattr(mod, name, getattr(rec, name), raising=False)
        mp.setattr(
            local, "default_workers", lambda profile, device: 1
        )  # the fakes live in this process
        with pytest.raises((KeyboardInterrupt, SystemExit)):
            main([*GATE_ARGS, "-o", str(run)])
    done = {k for k, v in load_json(run / STATE_JSON)["steps"].items() if v.get("done")}
    assert done == set(PREFIX_STEPS), done
    return run


def copy_run(src, dst):
    """A copy of a run folder to resume elsewhere (its lock file left behind)."""
    from e2net_eval.rundir import LOCK_FILE

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(LOCK_FILE))
    return dst
