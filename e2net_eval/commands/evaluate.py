"""`e2net-eval evaluate` (score a prediction folder) and `e2net-eval bench metrics`.

Light at import (click, the metric registry and `metrics.evaluate`, which loads its scoring
code when it runs): `evaluate --help` loads no scoring code.
"""

from __future__ import annotations

import math

import click

from e2net_eval.errors import InputError
from e2net_eval.metrics.evaluate import EvaluateOptions, evaluate
from e2net_eval.metrics.registry import (
    DEFAULT_CONNECTIVITY,
    LESION_CONNECTIVITY,
    NSD_TOLERANCE_MM,
    case_metrics,
    display_metrics,
    lesion_metrics,
)


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def _undefined(r: dict) -> int:
    """Cases where some per-case metric of the region was undefined (the largest count)."""
    counts = [r[m.name]["n_undefined"] for m in case_metrics() if isinstance(r.get(m.name), dict)]
    return max(counts, default=0)


def format_summary(summary: dict) -> str:
    """A short table of the set-level scores: the registry's displayed metrics per region."""
    first = next(iter(summary["regions"].values()), {})
    shown = [m for m in display_metrics() if m.level != "case" or m.name in first]
    head = " ".join([f"{'region':<8}", *(f"{m.display[0]:>{m.display[1]}}" for m in shown)])
    lines = [f"{summary['n_cases']} cases", f"{head} {'undef':>5}"]
    for region, r in summary["regions"].items():
        cells = [f"{region:<8}"]
        for m in shown:
            _, width, digits = m.display
            value = r.get(m.name)
            value = value.get("mean") if isinstance(value, dict) else value
            cells.append(f"{_fmt(value, digits):>{width}}")
        lines.append(f"{' '.join(cells)} {_undefined(r):>5}")
    tb = summary["tumour_burden"]
    lines.append(
        f"tumour burden: RMSE {_fmt(tb['rmse'])}, max |error| {_fmt(tb['max_abs_error'])}, "
        f"no liver predicted in {tb['n_no_liver_predicted']} case(s)"
    )
    d = summary["detection"]
    for how, c in ((f"IoU > {d['iou_threshold']}", d), ("any overlap", d["any_overlap"])):
        lines.append(
            f"lesions ({how}): TP {c['tp']} FP {c['fp']} FN {c['fn']}, precision "
            f"{_fmt(c['precision'], 3)} recall {_fmt(c['recall'], 3)} F1 {_fmt(c['f1'], 3)}"
        )
    pan = summary.get("panoptic")
    if pan:
        cells = ", ".join(
            f"{m.name.upper() if m.name != 'lesion_dice' else 'lesion Dice'} "
            f"{_fmt(pan[m.name]['mean'], 3)}"
            for m in lesion_metrics()
        )
        lines.append(
            f"lesions one-to-one (IoU > {pan['iou_threshold']}), mean per case: {cells}; "
            f"pooled PQ {_fmt(pan['pooled']['pq'], 3)}"
        )
    if summary.get("missing_predictions"):
        missing = ", ".join(summary["missing_predictions"])
        lines.append(f"scored as EMPTY (no prediction file): {missing}")
    return "\n".join(lines)


@click.command("evaluate")
@click.argument("pred", type=click.Path(file_okay=False))
@click.argument("ref", type=click.Path(exists=True))
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option(
    "-j",
    "--jobs",
    default=1,
    show_default=True,
    type=click.IntRange(1, None),
    help="Cases scored in parallel processes (at most this many in memory).",
)
@click.option(
    "--allow-missing",
    is_flag=True,
    help="Score a case without a prediction file as an empty prediction.",
)
@click.option(
    "--allow-affine-mismatch",
    is_flag=True,
    help="Accept predictions whose affine differs from the reference's.",
)
@click.option(
    "--connectivity",
    default=DEFAULT_CONNECTIVITY,
    show_default=True,
    type=click.IntRange(1, 3),
    help="Surface erosion neighbourhood (1: 6, 2: 18, 3: 26).",
)
@click.option(
    "--lesion-connectivity",
    default=str(LESION_CONNECTIVITY),
    show_default=True,
    type=click.Choice(["6", "18", "26"]),
    help="Voxel connectivity of lesions.",
)
@click.option(
    "--protocol",
    default=None,
    help="Which protocol produced these numbers "
    "(e.g. 'LiTS validation, 20 cases'); stored in summary.json.",
)
@click.option(
    "--peer-metrics/--no-peer-metrics",
    default=True,
    show_default=True,
    help="Also score what other tools report: HD95, pooled HD95, NSD, MASD on "
    "6-neighbourhood surfaces (MONAI, medpy, MetricsReloaded) and lesion-wise RQ, SQ, PQ, "
    "lesion Dice (panoptica).",
)
@click.option(
    "--nsd-tolerance",
    default=NSD_TOLERANCE_MM,
    show_default=True,
    type=click.FloatRange(0, None),
    metavar="MM",
    help="Tolerance of the normalised surface distance (NSD), in mm; recorded in meta.",
)
@click.option(
    "--pred-pattern",
    default=None,
    metavar="PATTERN",
    help="Path of each prediction inside PRED, {id} the case id "
    "(e.g. '{id}/{id}_seg.nii.gz', 'case_{id:0>5}.nii.gz'); replaces the built-in names.",
)
@click.option(
    "--case", "cases", multiple=True, help="Score only these reference cases (once each)."
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a non-empty OUT (only an evaluation e2net-eval wrote there).",
)
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def evaluate_command(pred, ref, out, lesion_connectivity, cases, no_progress, **options) -> None:
    """Score the label volumes in PRED against the reference REF.

    REF is a dataset (LiTS, Task03, 3DIRCADb) or a folder of reference labels only (LiTS
    segmentation-N files, a Decathlon/nnU-Net labelsTr folder, or <id>.nii[.gz] files).
    PRED holds one file per reference case <id>, on the reference's grid: <id> (ours,
    nnU-Net), segmentation-<id>, test-segmentation-<id>, liver_<id> or volume-<id>, with
    .nii or .nii.gz, or MONAI SaveImage's <stem>/<stem>_seg|_trans.nii.gz; --pred-pattern
    for anything else. Writes OUT/per_case.csv and OUT/summary.json, together (a folder
    swapped in whole).
    """
    options = EvaluateOptions(  # the other options are named as its fields
        lesion_connectivity=int(lesion_connectivity),
        case_ids=list(cases) or None,
        progress=not no_progress,
        **options,
    )
    summary = evaluate(pred, ref, out, options)
    click.echo(format_summary(summary))
    click.echo(f"wrote {out}/per_case.csv and {out}/summary.json")


@click.command("metrics")
@click.option(
    "--size",
    default="512x512x200",
    show_default=True,
    help="Volume shape XxYxZ of the generated case.",
)
@click.option("--spacing", default="0.78x0.78x2.5", show_default=True, help="Voxel size in mm.")
@click.option("--skip-medpy", is_flag=True, help="Time only our code (medpy takes minutes).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--repeat",
    default=3,
    show_default=True,
    type=click.IntRange(1, None),
    help="Time reading and our scoring this many times; report the best.",
)
@click.option(
    "--workdir",
    default=None,
    type=click.Path(exists=True, file_okay=False, writable=True),
    help="Where the .nii.gz files are written (default: a temporary folder).",
)
@click.option(
    "--evaluate-cases",
    default=8,
    show_default=True,
    type=click.IntRange(0, None),
    help="Also time the whole `evaluate` command on this many generated cases (0: skip).",
)
@click.option(
    "--evaluate-size",
    default="512x512x160",
    show_default=True,
    help="Volume shape XxYxZ of those cases.",
)
@click.option(
    "-j",
    "--jobs",
    default=2,
    show_default=True,
    type=click.IntRange(1, None),
    help="Workers of the timed `evaluate` command.",
)
def bench_metrics(
    size, spacing, skip_medpy, seed, repeat, workdir, evaluate_cases, evaluate_size, jobs
) -> None:
    """Time the score set of one generated liver+tumour case (ours vs medpy), then the whole
    `evaluate` command on a set of such cases against its read floor."""
    from e2net_eval.metrics.bench import run_benchmark, run_evaluate_benchmark

    shape, sp = _shape(size, "--size"), _spacing(spacing)
    result = run_benchmark(
        shape, sp, seed=seed, medpy=not skip_medpy, repeat=repeat, workdir=workdir, echo=click.echo
    )
    if evaluate_cases:
        click.echo("")
        run_evaluate_benchmark(
            evaluate_cases,
            _shape(evaluate_size, "--evaluate-size"),
            sp,
            jobs=jobs,
            seed=seed,
            repeat=repeat,
            workdir=workdir,
            echo=click.echo,
        )
    if result.get("agree") is False:
        raise click.ClickException("ours and medpy disagree (see above)")


def _shape(text: str, option: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise InputError(f"bad {option} ({exc})") from exc
    if len(shape) != 3 or min(shape) < 16:
        raise InputError(f"{option} needs three values, each axis at least 16")
    return shape  # type: ignore[return-value]


def _spacing(text: str) -> tuple[float, float, float]:
    try:
        sp = tuple(float(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise InputError(f"bad --spacing ({exc})") from exc
    if len(sp) != 3 or min(sp) <= 0:
        raise InputError("--spacing needs three positive values")
    return sp  # type: ignore[return-value]


COMMANDS: list[click.Command] = [evaluate_command]
BENCH_COMMANDS: list[click.Command] = [bench_metrics]
