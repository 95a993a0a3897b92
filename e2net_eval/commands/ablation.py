"""`e2net-eval ablation`: the whole pipeline of the paper's Table 3 (workflows/ablation/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from e2net_eval.commands.options import device_option, profile_option
from e2net_eval.workflows.launch.base import LAUNCHERS, LOCAL
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
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the phantom, and of split and training (replicate r: seed + r).",
)
@click.option(
    "--replicates",
    type=click.IntRange(min=1),
    default=None,
    help="Run the ablation this many times, each with its own split and training seed, into "
    "the same run directory; the report adds the mean, SD and range over replicates and how "
    "often each configuration beats the one before it. Default: 1, or as many as "
    "--split-seeds/--seeds name. A rerun may add replicates; finished ones are kept.",
)
@click.option(
    "--split-seeds",
    callback=lambda ctx, param, value: _seed_list(value, "--split-seeds"),
    metavar="S0,S1,...",
    help="Split seed of each replicate (default: seed + r).",
)
@click.option(
    "--seeds",
    "train_seeds",
    callback=lambda ctx, param, value: _seed_list(value, "--seeds"),
    metavar="T0,T1,...",
    help="Training seed of each replicate (default: seed + r). The same split seed with "
    "several training seeds measures the training noise alone.",
)
@click.option(
    "--backbone-weights",
    type=click.Path(path_type=Path),
    help="A local Res2Net-50 checkpoint (official or timm res2net50_26w_4s; with --profile "
    "small, one of that encoder's layout) loaded into every encoder of every configuration "
    "before training. Part of the run's identity: its SHA-256 is recorded, and a resumed run "
    "refuses another file.",
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
    "--launcher",
    type=click.Choice(LAUNCHERS),
    default=LOCAL,
    show_default=True,
    help="Where the steps run: this machine (--workers processes), SLURM jobs through "
    "submitit (data preparation, each configuration's training, then its predictions and "
    "evaluations, the report; docs/cluster.md), or those same jobs as local subprocesses "
    "(submitit's local executor: to try the cluster jobs without a cluster).",
)
@click.option("--slurm-partition", help="SLURM partition of every job (default: the cluster's).")
@click.option(
    "--slurm-gpus-per-job",
    type=click.IntRange(min=0),
    help="GPUs of each training job [default: 1]; N > 1 trains the configuration with DDP "
    "over N tasks. Prediction jobs get one GPU, the data and report jobs none.",
)
@click.option(
    "--slurm-cpus-per-job",
    type=click.IntRange(min=1),
    help="CPUs of each training job, shared by its tasks (other jobs get one GPU's share) "
    "[default: the profile's loader workers + 2 per GPU].",
)
@click.option(
    "--slurm-time",
    help="Time limit of every job: minutes, H:M:S or D-H[:M[:S]] [default: 1-00:00:00]. A "
    "training that hits it is requeued and resumes from its last checkpoint.",
)
@click.option("--slurm-mem", help="Memory of every job, e.g. 64G [default: the cluster's].")
@click.option(
    "--slurm-array-parallelism",
    type=click.IntRange(min=1),
    help="At most N of this run's jobs queued or running at once [default: no limit].",
)
@click.option(
    "--slurm-additional",
    multiple=True,
    metavar="KEY=VALUE",
    help="Extra sbatch option for every job (repeatable), e.g. account=lab, qos=high, "
    "constraint=a100; a bare KEY is a flag.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=Path("runs/ablation"),
    show_default=True,
    help="Run directory; rerunning with the same arguments resumes it.",
)
def ablation_cmd(configs: str | None, launcher: str, **options: Any) -> None:
    """Split, train stage 1 and the stage-2 configurations of Table 3, predict the LiTS
    validation cases and 3DIRCADb, evaluate, and write the report (RUN/report). Without
    --lits it generates phantom data sets. Resumable: finished steps are never redone."""
    from e2net_eval.workflows.ablation import AblationArgs, run_ablation

    slurm = _slurm_options(launcher, options)  # the rest are AblationArgs' fields
    chosen = [c.strip() for c in configs.split(",") if c.strip()] if configs else None
    args = AblationArgs(configs=chosen, launcher=launcher, slurm=slurm, **options)
    report = run_ablation(args, echo=lambda text: click.echo(text, err=True))
    click.echo(f"report: {report / 'report.html'}")


#: The --slurm-* options, in the order a usage error names them.
SLURM_OPTIONS = (
    "partition",
    "gpus-per-job",
    "cpus-per-job",
    "time",
    "mem",
    "array-parallelism",
    "additional",
)


def _slurm_options(launcher: str, options: dict[str, Any]) -> Any:
    """The `SlurmOptions` of a cluster launcher (None for the local one), taking the
    ``slurm_*`` values out of `options`; a --slurm-* option without one is a usage error."""
    given = {k: options.pop("slurm_" + k.replace("-", "_")) for k in SLURM_OPTIONS}
    given["additional"] = given["additional"] or None
    if launcher == LOCAL:
        names = ", ".join(f"--slurm-{k}" for k, v in given.items() if v is not None)
        if names:
            raise click.UsageError(f"{names} need --launcher slurm")
        return None
    from e2net_eval.workflows.launch.slurm import options_from_cli

    return options_from_cli(given)


def _seed_list(value: str | None, option: str) -> list[int] | None:
    """``"0,1,2"`` -> [0, 1, 2]; a usage error (exit 2) for anything else."""
    if value is None:
        return None
    try:
        seeds = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None
    if not seeds:
        raise click.BadParameter("name at least one seed")
    return seeds


COMMANDS: list[click.Command] = [ablation_cmd]
BENCH_COMMANDS: list[click.Command] = []
