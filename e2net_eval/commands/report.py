"""CLI commands of the report stage: `leaderboard`, `regress`, `report`, `compare`.

Light at import (no torch, numpy, pandas or matplotlib): `regress` and `leaderboard` read
JSON; `report` and `compare` load the engine when they run (never torch; matplotlib only to
draw).
"""

from __future__ import annotations

import click

from e2net_eval.errors import InputError, RegressionFound, printable
from e2net_eval.report import regress as _regress
from e2net_eval.report.leaderboards import TABLES, load_table, render_text
from e2net_eval.util.jsonio import dump_json
from e2net_eval.util.outdir import check_output_file


@click.command("leaderboard")
@click.option(
    "--table",
    "tables",
    type=click.Choice([str(n) for n in TABLES]),
    multiple=True,
    help="Print only this table of the paper (repeatable). Default: all three.",
)
def leaderboard_cmd(tables: tuple[str, ...]) -> None:
    """Print the paper's published Tables 1-3 (from leaderboards/*.json)."""
    numbers = [int(t) for t in tables] or list(TABLES)
    click.echo("\n".join(render_text(load_table(n)) for n in numbers), nl=False)


@click.command("regress")
@click.argument("current", type=click.Path(path_type=str))
@click.argument("baseline", type=click.Path(path_type=str))
@click.option(
    "--tolerance",
    "tolerances",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Allowed worsening of a metric, absolute in its unit (e.g. tumour.dice_per_case=0.02). "
    "METRIC may be a glob (*.assd=0.5); the last matching option wins. Repeatable.",
)
@click.option(
    "--default-tolerance",
    default="0",
    show_default=True,
    help="Tolerance of every metric no --tolerance names (a finite number >= 0).",
)
@click.option(
    "--json", "json_out", type=click.Path(path_type=str), help="Also write the deltas as JSON."
)
@click.option(
    "--allow-mixed",
    is_flag=True,
    help="Gate even when CURRENT and BASELINE differ in their cases, reference labels, "
    "protocol or scoring options (what differs is printed as a note).",
)
def regress_cmd(
    current: str,
    baseline: str,
    tolerances: tuple[str, ...],
    default_tolerance: str,
    json_out: str | None,
    allow_mixed: bool,
) -> None:
    """Gate CURRENT against BASELINE (summary.json files or run directories holding them).

    Exit 0 when no metric got worse beyond its tolerance, 1 when one did, 2 on bad input,
    CURRENT and BASELINE scored on different cases, reference labels, protocol or scoring
    options included (unless --allow-mixed).
    """
    parsed = [_regress.parse_tolerance(t) for t in tolerances]
    default = _regress.check_tolerance(default_tolerance)
    if json_out:  # never onto a summary it compares
        read = [
            *_regress.find_summaries(current).values(),
            *_regress.find_summaries(baseline).values(),
        ]
        check_output_file(json_out, read=[current, baseline, *read])
    base_summaries = _regress.load_summaries(baseline)
    cur_summaries = _regress.load_summaries(current)
    base, cur = _regress.metrics_of(base_summaries), _regress.metrics_of(cur_summaries)
    try:
        deltas = _regress.compare(cur, base, parsed, default)
    except InputError as exc:  # what CURRENT lacks: name it (found by tests/fuzz)
        if exc.path is not None:
            raise
        files = [file for file, _ in cur_summaries.values()]
        raise InputError(str(exc), path=files[0] if len(files) == 1 else current) from None
    mixed = _regress.incomparable(cur_summaries, base_summaries)
    if mixed and not allow_mixed:
        more = f" (and {len(mixed) - 1} more summaries)" if len(mixed) > 1 else ""
        raise InputError(
            f"not comparable with BASELINE: {mixed[0]}{more}; "
            "pass --allow-mixed to gate them anyway"
        )
    click.echo(_regress.format_deltas(deltas), nl=False)
    for text in mixed:
        click.echo(f"note: gated anyway (--allow-mixed): {text}")
    worse = [d for d in deltas if d.status == "worse"]
    if json_out:
        dump_json(
            json_out,
            {
                "current": current,
                "baseline": baseline,
                "n_worse": len(worse),
                "deltas": [dict(vars(d), delta=d.delta) for d in deltas],
            },
        )
    n_ungated = sum(d.status == "not gated" for d in deltas)
    if n_ungated:
        click.echo(f"note: {n_ungated} metric(s) with no known direction were not gated")
    if worse:
        names = ", ".join(printable(d.key) for d in worse[:5]) + (" ..." if len(worse) > 5 else "")
        raise RegressionFound(f"{len(worse)} metric(s) worse beyond tolerance: {names}")
    click.echo(f"ok: {len(deltas)} metric(s) compared, none worse beyond tolerance")


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=str))
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=str),
    help="Output folder. Default: RUN_DIR/report.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a non-empty output folder (only a report e2net-eval wrote there).",
)
def report_cmd(run_dir: str, out_dir: str | None, overwrite: bool) -> None:
    """Write Table 1-3 style tables, paired tests and figures of an ablation run directory
    (Markdown, LaTeX, CSV, self-contained HTML)."""
    from e2net_eval.report.build import write_report
    from e2net_eval.rundir import report_dir

    _echo_written(write_report(run_dir, out_dir or report_dir(run_dir), overwrite=overwrite))


@click.command("compare")
@click.argument("entries", nargs=-1, required=True, metavar="NAME=PATH...")
@click.option(
    "-o", "--out", "out_dir", required=True, type=click.Path(path_type=str), help="Output folder."
)
@click.option(
    "--table",
    type=click.Choice([str(n) for n in TABLES]),
    default=None,
    help="Which of the paper's tables the entries sit beside "
    "(default: 2 when every entry was scored on 3DIRCADb, else 1).",
)
@click.option(
    "--baseline", default=None, metavar="NAME", help="Test every entry against this one only."
)
@click.option(
    "--allow-mixed",
    is_flag=True,
    help="Compare entries scored on different reference sets, protocols or scoring options "
    "(every row then says what differs).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a non-empty OUT (only a comparison e2net-eval wrote there).",
)
def compare_cmd(
    entries: tuple[str, ...],
    out_dir: str,
    table: str | None,
    baseline: str | None,
    allow_mixed: bool,
    overwrite: bool,
) -> None:
    """Put evaluations side by side: tables beside the paper's, paired tests, figures.

    Each PATH is an `e2net-eval evaluate` output folder or a summary.json; NAME labels its
    rows. Entries must share the reference set, protocol and scoring options
    (--allow-mixed to override). Paired tests (Wilcoxon, Holm-adjusted) run on the cases
    two entries share: against --baseline, or between all pairs. Writes report.md,
    report.tex, tables.csv and report.html (+ figures/) into OUT.
    """
    from e2net_eval.report.compare import parse_spec, write_comparison

    specs = [parse_spec(e) for e in entries]
    number = None if table is None else int(table)
    options = {"table": number, "baseline": baseline, "allow_mixed": allow_mixed}
    _echo_written(write_comparison(specs, out_dir, overwrite=overwrite, **options))


def _echo_written(written: dict[str, object]) -> None:
    for kind, path in written.items():
        click.echo(f"{kind:9s} {path}")


COMMANDS: list[click.Command] = [leaderboard_cmd, regress_cmd, report_cmd, compare_cmd]
BENCH_COMMANDS: list[click.Command] = []
