"""CLI commands (filled by the stage this module fronts)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
BENCH_COMMANDS: list[click.Command] = []
