"""Running (or resuming) an ablation: the run folder, the state file, the launcher."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from e2net_eval.rundir import ABLATION_JSON, LOCK_FILE, SPLIT_JSON, report_dir, split_lists
from e2net_eval.util.jsonio import dump_json, load_json
from e2net_eval.util.meta import run_meta
from e2net_eval.util.outdir import work_folder
from e2net_eval.workflows.ablation.args import (
    AblationArgs,
    Replicate,
    check_args,
    fingerprint_extends,
)
from e2net_eval.workflows.ablation.graph import Step, finished_steps, job_graph, step_kind
from e2net_eval.workflows.ablation.steps import StepContext, execute_step
from e2net_eval.workflows.jobs import Job, resolved_device
from e2net_eval.workflows.launch.base import Launcher, Work
from e2net_eval.workflows.state import StateBook

log = logging.getLogger(__name__)


def run_ablation(args: AblationArgs, *, echo: Callable[[str], None] = log.info) -> Path:
    """Run (or resume) the ablation described by `args`; return the report folder."""
    profile, launcher = check_args(args)
    run = Path(args.out)
    with work_folder(
        run,
        kind="ablation-run",
        inputs=[args.lits, args.ircadb],
        lock_name=LOCK_FILE,
        who="ablation",
    ):
        book = StateBook(run, args.fingerprint(), extends=fingerprint_extends)
        jobs = job_graph(args)
        ctx = StepContext.for_run(args, run)
        done = finished_steps(jobs, book.done)
        stale = [j.name for j in jobs if book.done(j.name) and j.name not in done]

        def mark(step: str, outputs: Any, seconds: float, job_id: str | None) -> None:
            book.mark(step, outputs, seconds, args.device, job=job_id)
            write_info(ctx, book, launcher)

        def announce(where: str) -> None:
            _announce(args, run, (jobs, done, stale), where, echo)

        work = Work(
            jobs=jobs,
            done=done,
            execute=execute_step,
            spec=ctx,
            book=book,
            run=run,
            threads=profile.cpu_threads,
            mark=mark,
            announce=announce,
            echo=echo,
            kind_of=step_kind,
        )
        launcher.run(work)
        write_info(ctx, book, launcher)
        return report_dir(run)


def _announce(
    args: AblationArgs,
    run: Path,
    steps: tuple[list[Job], list[str], list[str]],
    where: str,
    echo: Callable[[str], None],
) -> None:
    """The run's header lines: steps (all, done, stale), protocol, where they run, replicates."""
    jobs, done, stale = steps
    reps = args.replicate_list()
    echo(
        f"ablation: {len(jobs)} steps, {len(done)} already done; protocol {args.protocol}, "
        f"profile {args.profile}, seed {args.seed}, {where} -> {run}"
    )
    if len(reps) > 1:
        echo(
            f"ablation: {len(reps)} replicates, split seeds "
            f"{', '.join(str(r.split_seed) for r in reps)}; training seeds "
            f"{', '.join(str(r.seed) for r in reps)}"
        )
    if args.backbone_weights is not None:
        echo(f"ablation: every encoder starts from {args.backbone_weights}")
    if stale:
        echo(f"ablation: {len(stale)} finished step(s) run again, their inputs grew: {stale}")


def write_info(ctx: StepContext, book: StateBook, launcher: Launcher) -> None:
    """RUN/ablation.json: what the report prints next to every measured number."""
    a, run = ctx.args, ctx.run
    overlap = Step("overlap").name
    info = {
        "protocol": a.protocol,
        "profile": a.profile,
        "seed": a.seed,
        "device": resolved_device(a.device),
        "configs": a.configs,
        "phantom": a.phantom,
        "data": {"lits": ctx.rel(ctx.lits), "ircadb": ctx.rel(ctx.ircadb)},
        "max_steps": {c: a.steps_for(c) for c in a.configs},
        "overlap": book.outputs(overlap) if book.done(overlap) else None,
        "split": ctx.split() if (run / SPLIT_JSON).is_file() else None,
        "replicates": [_replicate_info(ctx, rep) for rep in a.replicate_list()],
        "backbone_weights": a.backbone(),
        "meta": run_meta(),
    }
    if launcher.remote:  # trained on the compute nodes, not where this process runs
        info["launcher"] = launcher.name
        info["device"] = _trained_on(ctx, book) or a.device
    dump_json(run / ABLATION_JSON, info)


def _replicate_info(ctx: StepContext, rep: Replicate) -> dict[str, Any]:
    """One replicate as ablation.json records it: seeds, folder, split sizes."""
    path = ctx.root(rep) / SPLIT_JSON
    train, val = split_lists(load_json(path), path) if path.is_file() else (None, None)
    return {
        "index": rep.index,
        "split_seed": rep.split_seed,
        "seed": rep.seed,
        "dir": ctx.rel(ctx.root(rep)),
        "n_train": None if train is None else len(train),
        "n_validation": None if val is None else len(val),
    }


def _trained_on(ctx: StepContext, book: StateBook) -> str | None:
    """The device(s) the finished trainings ran on, from their done records."""
    devices = set()
    for rep in ctx.args.replicate_list():
        for c in ctx.args.configs:
            step = Step("train", config=c, replicate=rep.index).name
            if book.done(step):
                done = (book.outputs(step) or {}).get("done") or {}
                devices.add(done.get("device"))
    devices.discard(None)
    return ", ".join(sorted(devices)) or None
