"""The resume rules: what a configuration folder says to do (start, start over, skip,
continue or refuse), what a resumed run may change, and ``metrics.jsonl`` made to agree with
the checkpoint training goes on from. Plain functions, tested without training."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from e2net_eval import rundir
from e2net_eval.errors import InputError
from e2net_eval.training import checkpoint as ckpt
from e2net_eval.training.distributed import DistInfo, barrier
from e2net_eval.training.job import TrainJob, TrainSettings
from e2net_eval.util.atomic import write_text
from e2net_eval.util.jsonio import load_json

log = logging.getLogger(__name__)

#: Settings a resumed run may change: limits and loader processes, not the optimisation.
RESUMABLE = ("max_epochs", "num_workers", "steps_per_epoch")
#: What `resume_decision` says to do with a configuration folder.
START, START_OVER, SKIP, CONTINUE, REFUSE = "start", "start over", "skip", "continue", "refuse"


def resume_decision(
    done: dict[str, Any] | None,
    has_checkpoint: bool,
    *,
    resume: bool,
    force: bool,
    max_steps: int | None,
    max_epochs: int | None,
) -> str:
    """What to do with a configuration folder holding `done` (its ``done.json`` or None) and
    maybe a last checkpoint: START, START_OVER (`force`), SKIP (done, and no raised limit to
    resume to), CONTINUE (from the checkpoint) or REFUSE (a checkpoint but no `resume`)."""
    if force:
        return START_OVER
    if done is not None:
        # the limit it stopped at, raised: (new limit, what done.json counted) by stop reason
        limit, key = {"max_steps": (max_steps, "steps"), "max_epochs": (max_epochs, "epochs")}.get(
            done.get("reason"), (None, None)
        )
        raised = limit is not None and limit > done[key]
        if not (resume and raised):
            return SKIP
    if has_checkpoint:
        return CONTINUE if resume else REFUSE
    return START


def changed_settings(old: dict, new: dict) -> list[str]:
    """Names of settings that differ between a checkpoint and this invocation (lists and
    tuples compare by value; the `RESUMABLE` ones may differ)."""

    def differs(key: str) -> bool:
        a, b = old.get(key), new.get(key)
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return list(a) != list(b)
        return a != b

    return sorted(k for k in set(old) | set(new) if k not in RESUMABLE and differs(k))


def check_resumable(
    state: dict[str, Any], seed: int, settings: TrainSettings, path: Path | None = None
) -> None:
    """Refuse to resume a checkpoint (at `path`, named in the error) with another seed or
    other optimisation settings."""
    if state["seed"] != seed:
        raise InputError(
            f"resume with seed {seed}, the run was started with {state['seed']}", path=path
        )
    changed = changed_settings(state["settings"], settings.to_dict())
    if changed:
        raise InputError(f"resume with different settings than the run's: {changed}", path=path)


def decide(job: TrainJob, out: Path, info: DistInfo) -> tuple[dict | None, dict | None]:
    """Apply `resume_decision` to the configuration folder `out`: (its ``done.json`` record
    when the job is skipped, else None; the checkpoint to continue from, else None). A
    refused folder is an input error; one started over loses every file of the old attempt."""
    done_path, last_path = out / rundir.DONE_JSON, out / rundir.LAST_CHECKPOINT
    done = load_json(done_path) if done_path.is_file() else None
    action = resume_decision(
        done,
        last_path.is_file(),
        resume=job.resume,
        force=job.force,
        max_steps=job.max_steps,
        max_epochs=job.max_epochs,
    )
    if action == SKIP:
        log.info("%s is done (%s); skipping", job.config, done.get("reason"))
        return done, None
    if action == REFUSE:
        raise InputError(
            f"{job.config} already has a checkpoint; pass --resume to continue or --force"
            " to start over",
            path=last_path,
        )
    if action == START_OVER:
        if info.is_main:  # nothing of the old attempt may leak into the new one
            for name in rundir.ATTEMPT_FILES:
                (out / name).unlink(missing_ok=True)
        barrier(info)
    state = ckpt.load(last_path) if action == CONTINUE else None
    if info.is_main and action in (START, CONTINUE):
        reconcile_log(out, state)
    return None, state


def reconcile_log(out: Path, state: dict | None) -> None:
    """Make ``metrics.jsonl`` agree with the checkpoint training goes on from.

    A line is appended before its checkpoint is written, so a run killed between the two
    left a line the resumed run writes again: keep only the lines up to the checkpoint's
    step (none when there is no checkpoint: that attempt never saved one, and its
    ``best.pt`` goes too). A torn last line is dropped with them.
    """
    keep_step = -1 if state is None else int(state["step"])
    if state is None:
        (out / rundir.BEST_CHECKPOINT).unlink(missing_ok=True)
    path = out / rundir.METRICS_JSONL
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [ln for ln in lines if _line_step(ln) <= keep_step]
    if kept != lines:
        log.info("metrics.jsonl: %d line(s) after the checkpoint dropped", len(lines) - len(kept))
        write_text(path, "".join(f"{ln}\n" for ln in kept))


def _line_step(line: str) -> float:
    """The ``step`` of a metrics.jsonl line (infinity for a torn or foreign line)."""
    try:
        return float(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return float("inf")
