"""`e2net-eval train` and `e2net-eval bench train`."""

from __future__ import annotations

import click

from e2net_eval.commands.options import device_option, profile_option
from e2net_eval.util.jsonio import dump_json
from reference_models.registry import list_models

_TRAIN_HELP = f"""Train CONFIG ({", ".join(list_models())}) into a run directory.

    Several GPUs: torchrun --nproc_per_node=N -m e2net_eval train CONFIG --data ROOT -o RUN
    """


@click.command("train", help=_TRAIN_HELP)
@click.argument("config")
@click.option(
    "--data",
    "data_root",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Dataset root (LiTS, Task03_Liver or 3DIRCADb layout).",
)
@click.option(
    "--split",
    type=click.Path(exists=True, dir_okay=False),
    help="Split JSON (train/validation case ids); default: the seeded paper split, saved in RUN.",
)
@click.option(
    "--split-seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the split made when the run has none.",
)
@click.option(
    "-o",
    "--out",
    "run_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Run directory (holds every configuration trained into it).",
)
@profile_option()
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many steps.")
@click.option("--max-epochs", type=click.IntRange(min=1), help="Override the profile's maximum.")
@click.option(
    "--steps-per-epoch",
    type=click.IntRange(min=1),
    help="Cap an epoch at this many steps (small profile: 25).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@device_option()
@click.option("--resume", is_flag=True, help="Continue from RUN/CONFIG/checkpoint_last.pt.")
@click.option("--force", is_flag=True, help="Start the configuration over.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Global batch size.")
@click.option("--workers", "num_workers", type=click.IntRange(min=0), help="Loader processes.")
@click.option(
    "--backbone-weights",
    type=click.Path(exists=True, dir_okay=False),
    help="Encoder state dict (e.g. Res2Net-50) to start from.",
)
@click.option(
    "--context",
    type=click.Choice(["1", "3", "5"]),
    help="Adjacent slices as input channels (default 1, the paper's).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def train_cmd(config, data_root, run_dir, context, no_progress, **options) -> None:
    from e2net_eval.training.distributed import dist_info
    from e2net_eval.training.job import TrainJob
    from e2net_eval.training.trainer import run_job

    context = None if context is None else int(context)
    done = run_job(
        TrainJob(config, data_root, run_dir, context=context, progress=not no_progress, **options)
    )
    if dist_info().is_main:
        click.echo(
            f"{config}: {done['reason']} after {done['epochs']} epoch(s), {done['steps']} step(s);"
            f" best validation loss {done['best_val_loss']:.4f} -> {run_dir}/{config}"
        )


@click.command("train")
@click.option(
    "--config",
    "configs",
    multiple=True,
    help="Configuration(s); default the first and the last of the catalogue.",
)
@profile_option()
@click.option("--batch-size", type=click.IntRange(min=1), help="Default: the profile's.")
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Timed steps (after one warm-up step).",
)
@device_option()
@click.option(
    "--json", "json_out", type=click.Path(dir_okay=False), help="Also write the figures here."
)
def bench_train_cmd(configs, json_out, **options) -> None:
    """Training iterations per second, multiply-adds and the machine's matmul throughput."""
    from e2net_eval.runtime.timing import format_rows
    from e2net_eval.training.bench import bench_train

    names = list_models()
    result = bench_train(list(configs) or [names[0], names[-1]], **options)
    click.echo(format_rows(result))
    if json_out:
        dump_json(json_out, result)


COMMANDS: list[click.Command] = [train_cmd]
BENCH_COMMANDS: list[click.Command] = [bench_train_cmd]
