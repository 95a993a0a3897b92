"""CLI commands of the report stage: `leaderboard`, `regress`, `report`, `ablation`."""

from __future__ import annotations

import click

from e2net_eval.report.leaderboards import TABLES, load_table, render_text


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


COMMANDS: list[click.Command] = [leaderboard_cmd]
BENCH_COMMANDS: list[click.Command] = []
