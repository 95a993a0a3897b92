"""`e2net-eval predict` and `e2net-eval bench inference`."""

from __future__ import annotations

import click

from e2net_eval.commands.options import device_option, profile_option
from e2net_eval.util.jsonio import dump_json
from reference_models.registry import list_models


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
    help="Stage-2 configuration (default: the most complete in the run; the stage-1 one for "
    "liver only).",
)
@click.option(
    "--cases", "case_ids", multiple=True, help="Only these case ids (repeatable; once each)."
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a non-empty OUT (only a prediction set e2net-eval wrote there).",
)
@click.option(
    "--largest-component",
    is_flag=True,
    help="Keep the largest 3D liver component (off by default; the paper has none).",
)
@click.option(
    "--stage1-dir",
    type=click.Path(exists=True, file_okay=False),
    help="This run's stage-1 predictions of the same cases (predict --config stage1): stage 2 "
    "runs inside their liver instead of running stage 1 again.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@device_option()
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def predict_cmd(run_dir, data_root, out_dir, case_ids, no_progress, **options) -> None:
    """Two-stage prediction of whole volumes from a run directory into NIfTI files.

    The whole set (every case and predict.json) appears at once: a failure leaves OUT as
    it was."""
    from e2net_eval.inference.predictor import predict

    ids, progress = list(case_ids) or None, not no_progress
    paths = predict(run_dir, data_root, out_dir, case_ids=ids, progress=progress, **options)
    click.echo(f"wrote {len(paths)} prediction(s) to {out_dir}")


@click.command("inference")
@profile_option()
@click.option(
    "--size", type=click.IntRange(min=32), help="Slice size (default: the profile's bench case)."
)
@click.option(
    "--slices",
    "n_slices",
    type=click.IntRange(min=1),
    help="Slices per case (default: the profile's bench case).",
)
@click.option(
    "--config", default=list_models()[-1], show_default=True, help="Stage-2 configuration."
)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@device_option()
@click.option(
    "--json", "json_out", type=click.Path(dir_okay=False), help="Also write the figures here."
)
def bench_inference_cmd(json_out, **options) -> None:
    """Inference time per slice and per case, multiply-adds, and matmul throughput."""
    from e2net_eval.inference.bench import bench_inference
    from e2net_eval.runtime.timing import format_rows

    result = bench_inference(**options)
    click.echo(format_rows(result))
    if json_out:
        dump_json(json_out, result)


COMMANDS: list[click.Command] = [predict_cmd]
BENCH_COMMANDS: list[click.Command] = [bench_inference_cmd]
