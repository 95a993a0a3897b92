"""`e2net-eval ablation`: the whole pipeline of the paper's Table 3 (workflows/ablation.py)."""

from __future__ import annotations

from pathlib import Path

import click

from e2net_eval.commands.options import device_option, profile_option
from reference_models.registry import list_models


@click.command("ablation")
@click.option(
    "--lits",
    type=click.Path(path_type=Path),
    help="LiTS training folder (default: generate a phantom).",
)
@click.option("--ircadb", type=click.Path(path_type=Path), help="3DIRCADb folder (needs --lits).")
@profile_option()
@click.option(
    "--configs",
    default=None,
    help="Comma-separated configurations (default: every one of the catalogue, "
    f"{','.join(list_models())}); the stage-1 one is always trained (predictions need it).",
)
@device_option()
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of split, phantom and training."
)
@click.option(
    "--paper-protocol",
    is_flag=True,
    help="Keep the 3DIRCADb patients found among the LiTS cases in training, as the paper did "
    "(default: leak-free, they are excluded).",
)
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    help="Training steps for every configuration (default: the profile's budget).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Steps run at once in separate processes (independent configurations train in "
    "parallel). Default: one per CPU core for the small profile on the CPU, else 1. The "
    "results do not depend on it.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=Path("runs/ablation"),
    show_default=True,
    help="Run directory; rerunning with the same arguments resumes it.",
)
def ablation_cmd(
    lits: Path | None,
    ircadb: Path | None,
    profile: str,
    configs: str | None,
    device: str,
    seed: int,
    paper_protocol: bool,
    max_steps: int | None,
    workers: int | None,
    out: Path,
) -> None:
    """Split, train stage 1 and the stage-2 configurations of Table 3, predict the LiTS
    validation cases and 3DIRCADb, evaluate, and write the report (RUN/report). Without
    --lits it generates phantom data sets. Resumable: finished steps are never redone."""
    from e2net_eval.workflows.ablation import AblationArgs, run_ablation

    args = AblationArgs(
        out=out,
        lits=lits,
        ircadb=ircadb,
        profile=profile,
        configs=[c.strip() for c in configs.split(",") if c.strip()] if configs else None,
        seed=seed,
        paper_protocol=paper_protocol,
        max_steps=max_steps,
        device=device,
        workers=workers,
    )
    report = run_ablation(args, echo=lambda text: click.echo(text, err=True))
    click.echo(f"report: {report / 'report.html'}")


COMMANDS: list[click.Command] = [ablation_cmd]
BENCH_COMMANDS: list[click.Command] = []
