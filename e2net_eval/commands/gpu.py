"""`e2net-eval bench gpu`: the one-shot GPU check (workflows/gpu_check.py)."""

from __future__ import annotations

from pathlib import Path

import click

from e2net_eval.commands.options import DeviceType
from e2net_eval.errors import RunFailed
from e2net_eval.util.atomic import write_text
from e2net_eval.util.jsonio import dump_json
from e2net_eval.util.outdir import result_folder
from reference_models.registry import list_profiles


@click.command("gpu")
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for gpu_check.json and gpu_check.md (must not exist or be empty).",
)
@click.option(
    "--device",
    type=DeviceType(),
    default="cuda",
    show_default=True,
    help="cuda (every GPU present) or cpu (a dry run at a size the CPU does in seconds).",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Training steps per configuration.",
)
@click.option(
    "--ddp-steps", type=click.IntRange(min=1), default=20, show_default=True, help="DDP steps."
)
@click.option("--profile", type=click.Choice(list_profiles()), default="paper", show_default=True)
def bench_gpu(out: Path, device: str, steps: int, ddp_steps: int, profile: str) -> None:
    """Train every configuration STEPS steps (AMP, channels-last), time two-stage inference
    of a paper-size case, run DDP (NCCL) over the GPUs present, compare CUDA with the CPU,
    and write one JSON and Markdown summary. Exit 4 when a part failed its check."""
    from e2net_eval.runtime.device import resolve_device
    from e2net_eval.workflows.gpu_check import markdown, run_check

    resolve_device(device)  # a device that is not there: exit 2 before any work
    with result_folder(out, kind="gpu-check") as tmp:
        summary = run_check(device=device, steps=steps, profile=profile, ddp_steps=ddp_steps)
        dump_json(tmp / "gpu_check.json", summary)
        write_text(tmp / "gpu_check.md", markdown(summary))
    click.echo(markdown(summary))
    if not summary["ok"]:
        raise RunFailed(f"the GPU check failed; see {out / 'gpu_check.md'}")


COMMANDS: list[click.Command] = []
BENCH_COMMANDS: list[click.Command] = [bench_gpu]
