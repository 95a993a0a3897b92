"""`e2net-eval predict` and `e2net-eval bench inference`."""

from __future__ import annotations

import click

from e2net_eval.training.settings import PROFILES

DEVICES = click.Choice(["auto", "cpu", "cuda"])


@click.command("predict")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--data",
    "data_root",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Dataset root to predict (any layout the data layer reads).",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for <case_id>.nii.gz predictions.",
)
@click.option(
    "--config",
    help="Stage-2 configuration (default: the most complete in the run; 'stage1' for liver only).",
)
@click.option("--cases", "case_ids", multiple=True, help="Only these case ids (repeatable).")
@click.option(
    "--largest-component",
    is_flag=True,
    help="Keep the largest 3D liver component (off by default; the paper has none).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def predict_cmd(run_dir, data_root, out_dir, config, case_ids, largest_component, batch_size,
                device, no_progress) -> None:  # fmt: skip
    """Two-stage prediction of whole volumes from a run directory into NIfTI files."""
    from e2net_eval.inference.predictor import predict

    paths = predict(
        run_dir, data_root, out_dir, config=config, case_ids=list(case_ids) or None,
        device=device, largest_component=largest_component, batch_size=batch_size,
        progress=not no_progress,
    )  # fmt: skip
    click.echo(f"wrote {len(paths)} prediction(s) to {out_dir}")


@click.command("inference")
@click.option("--profile", type=click.Choice(PROFILES), default="small", show_default=True)
@click.option(
    "--size", type=click.IntRange(min=32), help="Slice size (default: 512 paper, 128 small)."
)
@click.option(
    "--slices", type=click.IntRange(min=1), help="Slices per case (default: 432 paper, 32 small)."
)
@click.option("--config", default="dist_dcff", show_default=True, help="Stage-2 configuration.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option(
    "--json", "json_out", type=click.Path(dir_okay=False), help="Also write the figures here."
)
def bench_inference_cmd(
    profile, size, slices, config, batch_size, repeats, device, json_out
) -> None:
    """Inference time per slice and per case, multiply-adds, and matmul throughput."""
    from e2net_eval.inference.bench import bench_inference
    from e2net_eval.training.bench import format_rows
    from e2net_eval.util.jsonio import dump_json

    result = bench_inference(
        profile=profile, size=size, n_slices=slices, config=config, batch_size=batch_size,
        repeats=repeats, device=device,
    )  # fmt: skip
    click.echo(format_rows(result))
    if json_out:
        dump_json(json_out, result)


COMMANDS: list[click.Command] = [predict_cmd]
BENCH_COMMANDS: list[click.Command] = [bench_inference_cmd]
