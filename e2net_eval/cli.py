"""`e2net-eval`: the command line. Calls down into the stages; nothing imports this module.

Exit codes: 0 success, 1 a metric regression found by a check, 2 a usage or input error
(one line naming the case and the file).
"""

from __future__ import annotations

import logging
import os
import sys

# Two torch threads on a busy 2-core machine can be several times slower than one unless
# idle OpenMP threads sleep instead of spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click  # noqa: E402

from e2net_eval import __version__  # noqa: E402
from e2net_eval.commands import datasets, evaluate, models, predict, report, train  # noqa: E402
from e2net_eval.errors import InputError, RegressionFound  # noqa: E402

_MODULES = (datasets, models, train, predict, evaluate, report)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="e2net-eval")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Evaluation and benchmarking harness for liver and liver-tumour segmentation on CT."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@cli.group()
def bench() -> None:
    """Benchmarks: time our code against a named reference in the same run."""


for _module in _MODULES:
    for _command in _module.COMMANDS:
        cli.add_command(_command)
    for _command in _module.BENCH_COMMANDS:
        bench.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and map errors to exit codes 1 and 2."""
    try:
        cli.main(args=argv, prog_name="e2net-eval", standalone_mode=False)
    except InputError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except RegressionFound as exc:
        click.echo(f"regression: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(0)
