"""`e2net-eval`: the command line. Calls down into the stages; nothing imports this module.

Exit codes: 0 success; 1 a metric regression found by `regress`, and nothing else; 2 a usage
or input error (one line naming the case and the file); 3 an internal error (a bug: the
traceback follows, to report); 4 steps of a run failed in their jobs (cluster runs: each job
named with its log file, the other jobs ran to their end); 130 interrupted; 128+N ended by signal N (SIGTERM: 143) after
removing its temporary files. docs/reliability.md lists the promises and their tests.

Commands load lazily: `e2net-eval evaluate --help` imports the evaluate command's module
only, and that module imports nothing heavy until the command runs (torch, numpy and
matplotlib stay out of `evaluate --help`, `regress`, `leaderboard`; a test guards it).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

# Two torch threads on a busy 2-core machine can be several times slower than one unless
# idle OpenMP threads sleep instead of spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click  # noqa: E402

from e2net_eval import __version__  # noqa: E402
from e2net_eval.errors import InputError, RegressionFound, RunFailed  # noqa: E402

#: Exit code of an unexpected exception (1 is reserved for a regression found by `regress`).
INTERNAL_ERROR = 3
#: Exit code of a run whose jobs failed (each named with its log; see `RunFailed`).
RUN_FAILED = 4

#: Command name -> the `e2net_eval.commands` module that defines it (in its ``COMMANDS``).
COMMAND_MODULES = {
    "datasets": "datasets",
    "models": "models",
    "train": "train",
    "predict": "predict",
    "evaluate": "evaluate",
    "leaderboard": "report",
    "regress": "report",
    "report": "report",
    "compare": "report",
    "ablation": "ablation",
    "rank": "rank",
}
#: `e2net-eval bench <name>` -> module (in its ``BENCH_COMMANDS``).
BENCH_MODULES = {"train": "train", "inference": "predict", "metrics": "evaluate", "rank": "rank"}


class LazyGroup(click.Group):
    """A group whose subcommands are imported from their module when first used."""

    def __init__(self, *args, modules: dict[str, str], attr: str, **kwargs):
        super().__init__(*args, **kwargs)
        self._modules, self._attr = modules, attr

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._modules))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands or name not in self._modules:
            return super().get_command(ctx, name)
        module = importlib.import_module(f"e2net_eval.commands.{self._modules[name]}")
        for command in getattr(module, self._attr):
            if command.name == name:
                self.add_command(command)
                return command
        raise RuntimeError(f"e2net_eval.commands.{self._modules[name]} defines no {name!r}")


@click.group(
    cls=LazyGroup,
    modules=COMMAND_MODULES,
    attr="COMMANDS",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="e2net-eval")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Evaluation and benchmarking harness for liver and liver-tumour segmentation on CT."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@cli.group(cls=LazyGroup, modules=BENCH_MODULES, attr="BENCH_COMMANDS")
def bench() -> None:
    """Benchmarks: time our code against a named reference in the same run."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and map errors to exit codes (module docstring)."""
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
    except RunFailed as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(RUN_FAILED)
    except Exception as exc:  # a bug: never exit 1, which means "a regression was found"
        import traceback

        traceback.print_exc()
        click.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(INTERNAL_ERROR)
    sys.exit(0)
