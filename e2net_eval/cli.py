"""`e2net-eval`: the command line. Calls down into the stages; nothing imports this module.

Exit codes: docs/reliability.md, "Exit codes". Commands load lazily (a test guards that
torch, numpy and matplotlib stay out of `--help`, `regress`, `leaderboard`).
"""

from __future__ import annotations

import os
import sys

#: Exit code of an interruption (Ctrl-C): 128 + SIGINT, at whatever point it comes.
INTERRUPTED = 130


def _interrupted() -> None:
    """Ctrl-C: one line, exit 130 (`SystemExit`, so ``finally`` blocks still run)."""
    sys.stderr.write("aborted\n")
    raise SystemExit(INTERRUPTED)


# Two torch threads on a busy 2-core machine can be several times slower than one unless
# idle OpenMP threads sleep instead of spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:  # Ctrl-C while the command line itself loads is an interruption too, not a traceback
    import importlib
    import logging
    import traceback

    import click

    from e2net_eval import __version__
    from e2net_eval.errors import InputError, RegressionFound, RunFailed, printable
except KeyboardInterrupt:
    _interrupted()

#: Exit code of an unexpected exception (1 is reserved for a regression found by `regress`).
INTERNAL_ERROR = 3
#: Exit code of a run whose jobs failed (each named with its log; see `RunFailed`).
RUN_FAILED = 4
#: Exit code when standard output was closed by its reader (128 + SIGPIPE).
STDOUT_CLOSED = 141


class StdoutClosed(Exception):
    """Standard output's reader went away (a closed pipe): not an OSError, so click's own
    handler (which exits 1, our "regression found") never sees it."""


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
BENCH_MODULES = {
    "train": "train",
    "inference": "predict",
    "metrics": "evaluate",
    "rank": "rank",
    "gpu": "gpu",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported from their module when first used."""

    def __init__(self, *args, modules: dict[str, str], attr: str, **kwargs):
        super().__init__(*args, **kwargs)
        self._modules, self._attr = modules, attr

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._modules))

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise StdoutClosed() from exc

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
    configure_logging(verbose)


#: Loggers of the libraries that read other people's files, and Python's warnings: silent
#: unless -v. What they say is about a file, and a file we refuse already has its one
#: `error:` line (docs/reliability.md); a file we accept was checked by our own readers.
LIBRARY_LOGGERS = ("nibabel", "pydicom", "py.warnings")


class PrintableFormatter(logging.Formatter):
    """One line per record, with no terminal escapes: a case id or a file name in a message
    is someone's data (`errors.printable`)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


def configure_logging(verbose: int) -> None:
    """Our log records at WARNING (-v INFO, -vv DEBUG); library records and warnings only
    with -v, each once (nibabel's logger has a handler of its own: it does not propagate)."""
    level = logging.WARNING - 10 * min(verbose, 2)
    handler = logging.StreamHandler()
    handler.setFormatter(PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    logging.captureWarnings(True)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.CRITICAL + 1)
    logging.getLogger("nibabel.global").propagate = False


@cli.group(cls=LazyGroup, modules=BENCH_MODULES, attr="BENCH_COMMANDS")
def bench() -> None:
    """Benchmarks: time our code against a named reference in the same run."""


def _was_interrupted(exc: BaseException) -> bool:
    """True when `exc` was raised while a KeyboardInterrupt was being handled or caused it
    (a cleanup that failed after Ctrl-C, a worker pool broken by it)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and map errors to exit codes (module docstring).

    Ctrl-C exits 130 wherever it lands: in a command, in an import, in the handling of
    another error (`_run`'s own handlers included)."""
    try:
        _run(argv)
    except KeyboardInterrupt:
        _interrupted()


def _run(argv: list[str] | None) -> None:
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
        sys.exit(INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except RunFailed as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(RUN_FAILED)
    except StdoutClosed:
        _stdout_closed()
    except Exception as exc:  # a bug: never exit 1, which means "a regression was found"
        if _was_interrupted(exc):
            _interrupted()
        traceback.print_exc()
        click.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(INTERNAL_ERROR)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_closed()
    sys.exit(0)


def _stdout_closed() -> None:
    """Exit STDOUT_CLOSED, quietly: what is still buffered for the closed pipe goes nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no file (a test's StringIO)
        pass
    sys.exit(STDOUT_CLOSED)
