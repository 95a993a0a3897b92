"""CLI: `e2net-eval rank NAME=PATH ... -o OUT` and `e2net-eval bench rank`.

Light at import (click only): the ranking engine (pandas, scipy) and matplotlib load when
the command runs.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("rank")
@click.argument("entries", nargs=-1, required=True, metavar="NAME=PATH...")
@click.option(
    "-o", "--out", "out_dir", required=True, type=click.Path(path_type=str), help="Output folder."
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="[REGION/]NAME",
    help="A per-case metric of the registry to rank by (dice, hd95, nsd, ...), in every "
    "region or in one (tumour/dice). Repeatable. Default: dice and hd95 in liver and tumour.",
)
@click.option(
    "--method",
    "methods",
    multiple=True,
    metavar="METHOD",
    help="Ranking method (repeatable): mean, median, quantile_<p> (quantile_0.25), "
    "rank_then_aggregate, test_then_rank. Default: mean, median, rank_then_aggregate, "
    "test_then_rank.",
)
@click.option("--bootstrap", "n_boot", type=int, default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option(
    "--p-adjust",
    type=click.Choice(["none", "holm", "bonferroni"]),
    default="none",
    show_default=True,
    help="Adjustment of the n(n-1) p-values of a task (challengeR's default: none).",
)
@click.option(
    "--missing",
    default="drop",
    show_default=True,
    metavar="drop|worst|VALUE",
    help="Missing or undefined values: drop them, the task's worst value, or a number.",
)
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--challenger-compatible",
    "challenger",
    is_flag=True,
    help="Reproduce challengeR 1.0.5's bootstrap exactly, quirks included (docs/reports.md).",
)
@click.option("--set", "set_name", default=None, help="Evaluation set of an ablation run PATH.")
@click.option("--allow-mixed", is_flag=True, help="Rank entries on different reference sets.")
@click.option("--no-figures", is_flag=True, help="Tables and CSVs only.")
@click.option("--overwrite", is_flag=True, help="Replace a ranking e2net-eval wrote in OUT.")
def rank_cmd(entries: tuple[str, ...], out_dir: str, **kw) -> None:
    """Rank prediction sets (evaluate outputs, summary.json files, ablation runs) the way
    challenge analyses do (challengeR), with bootstrap uncertainty and a consensus."""
    from e2net_eval.report.compare import parse_spec
    from e2net_eval.report.ranking import METHODS, Options, check_missing
    from e2net_eval.report.ranking_report import Request, write_ranking

    check_missing(kw["missing"])
    opts = Options(
        alpha=kw["alpha"],
        p_adjust=kw["p_adjust"],
        missing=kw["missing"],
        methods=tuple(dict.fromkeys(kw["methods"])) or METHODS,
    )
    same = ("metrics", "n_boot", "seed", "jobs", "challenger", "allow_mixed", "set_name")
    specs = tuple(parse_spec(s) for s in entries)
    figures = not kw["no_figures"]
    req = Request(specs, opts=opts, figures=figures, **{k: kw[k] for k in same})
    out = write_ranking(req, out_dir, overwrite=kw["overwrite"])
    for name in ("rankings.csv", "bootstrap.csv", "consensus.csv", "ranking.html"):
        click.echo(str(Path(out) / name))


@click.command("rank")
@click.option("--entries", "n_entries", type=click.IntRange(2), default=10, show_default=True)
@click.option("--cases", "n_cases", type=click.IntRange(2), default=100, show_default=True)
@click.option("--tasks", "n_tasks", type=click.IntRange(1), default=4, show_default=True)
@click.option("--bootstrap", "n_boot", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--challenger-src",
    type=click.Path(exists=True, file_okay=False),
    envvar="E2NET_CHALLENGER_SRC",
    default=None,
    help="A checkout of challengeR to time on the same data (needs Rscript; env "
    "E2NET_CHALLENGER_SRC). Without it only our engine is timed.",
)
@click.option(
    "--challenger-draws",
    type=click.IntRange(1),
    default=None,
    help="Bootstrap draws for challengeR (default: --bootstrap). Fewer keep its run short; "
    "the report then also gives its time per draw times --bootstrap.",
)
def bench_rank(**kw) -> None:
    """Time the ranking engine (all four methods, significance, bootstrap, consensus) on
    generated data, and challengeR's bootstrap of the same methods on the same data."""
    from e2net_eval.report.ranking_bench import run_bench

    for line in run_bench(**kw):
        click.echo(line)


COMMANDS = [rank_cmd]
BENCH_COMMANDS: list[click.Command] = [bench_rank]
