"""The fuzzer's engine: the CLI run in-process (fast), one oracle for every outcome, and the
campaign loop with its recorded seed.

Oracle (docs/reliability.md, "Fuzzing"). Every mutated input carries an *expectation*
computed without the code under test:

- ``REFUSE``: an independent reader (stdlib gzip/zipfile, nibabel on the raw bytes, the
  NIfTI and DICOM rules) finds the input unusable, so the command must exit 2.
- ``SAME``: the input means what the clean input means (a semantically neutral mutation, or
  one whose independent reading equals the clean reading): exit 0 must give the clean run's
  values.
- ``AS``: the input legitimately means something else; the expected values are those of the
  same command on a *canonical* re-encoding of what the independent reader decoded.

Whatever the expectation, exit 2 is allowed (the tool may be stricter than the reference
reader) unless the mutation is marked ``must_read`` (well-formed variants such as multi-member
gzip or a big-endian NIfTI, which a reader must accept). Always: exit 2 has exactly one
non-empty stderr line, ``error: ...``, naming the mutated file; never a traceback, exit 1 or
3, a signal, a hang (``RUN_TIMEOUT_S``), an output or temporary left behind on failure, or
a changed input (hashed before and after).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import signal
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

#: Seed and count of the default run; `E2NET_FUZZ_SEED` / `E2NET_FUZZ_N` override them.
DEFAULT_SEED = 20261202
#: A run of the CLI longer than this is a hang (a generous bound, not a speed check).
RUN_TIMEOUT_S = 60

#: Failures that are defects listed in issue 19 and fixed on other branches, by item, with
#: the mutants each covers. A failure counts as pending only when its mutant (or its
#: symptom) matches an item here; it is reported, never asserted, until the fixes are merged.
#: The lead removes each entry after merging its fix (the merged suite must have it empty);
#: `test_fuzz.py::test_no_known_pending_item_on_main` holds it empty on main.
KNOWN_PENDING: dict[str, str] = {}

REFUSE, SAME, AS = "refuse", "same", "as"


class Hang(BaseException):
    """A CLI run exceeded RUN_TIMEOUT_S (BaseException: the CLI's handler must not catch it)."""


@dataclass
class Result:
    code: int | str
    out: str
    err: str


@dataclass
class Mutant:
    """One fuzzed input: its family and kind, the file it replaces and the expectation."""

    family: str
    kind: str
    detail: str
    target: str  # relative path of the mutated file inside the input tree
    data: bytes | None  # new content (None: the file is removed)
    expect: str = SAME
    canonical: dict[str, bytes] | None = None  # for AS: relative path -> canonical bytes
    must_read: bool = False
    changes: frozenset[str] = field(default_factory=frozenset)  # facts it may change
    pending: str | None = None  # the KNOWN_PENDING item this mutant exercises, if any
    pending_in: frozenset[str] | None = None  # ... in these commands only (None: in all)


def _print_warning(msg) -> None:
    """What Python does with a warning when nothing records it: one text block on stderr."""
    sys.stderr.write(warnings._formatwarnmsg(msg))  # type: ignore[attr-defined]


def _alarm(signum, frame):  # noqa: ARG001
    raise Hang(f"no result after {RUN_TIMEOUT_S} s")


@contextlib.contextmanager
def _log_streams(err: io.StringIO, real_stderr):
    """Send every log handler that writes to the real stderr to `err`, and give the CLI an
    empty root logger, as a fresh process has (its `basicConfig` then binds to `err`)."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    root.handlers = []
    swapped = []
    for logger in [root, *logging.Logger.manager.loggerDict.values()]:
        for h in getattr(logger, "handlers", []):
            if isinstance(h, logging.StreamHandler) and h.stream in (sys.__stderr__, real_stderr):
                swapped.append((h, h.setStream(err)))
    try:
        yield
    finally:
        for h in root.handlers:
            h.close()
        root.handlers, level = saved_root
        root.setLevel(level)
        for h, stream in swapped:
            h.setStream(stream)


def run_cli(*args) -> Result:
    """`e2net-eval ARGS` in this process, as a fresh process would see it: its exit code
    (or "hang"), stdout and stderr, warnings shown (every time) and log records included."""
    from e2net_eval.cli import main

    out, err = io.StringIO(), io.StringIO()
    real_stderr = sys.stderr
    code: int | str = 0
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(RUN_TIMEOUT_S)
    try:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(),
            _log_streams(err, real_stderr),
        ):
            warnings.simplefilter("always")
            # a fresh process has not captured warnings yet: forget an earlier run's capture
            # (else the CLI's `logging.captureWarnings(True)` keeps our printer)
            logging.captureWarnings(False)
            # as a fresh process: printed to stderr (pytest's recorder would swallow them)
            warnings.showwarning = warnings._showwarning_orig  # type: ignore[attr-defined]
            warnings._showwarnmsg_impl = _print_warning  # type: ignore[attr-defined]
            try:
                main([str(a) for a in args])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    except Hang:
        code = "hang"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    if code in (129, 130, 143):  # SIGHUP/SIGINT/SIGTERM sent to the fuzzer: stop, as asked
        raise KeyboardInterrupt(f"signal during a fuzzed run (exit {code})")
    return Result(code, out.getvalue(), err.getvalue())


def digest(path: Path) -> dict[str, str]:
    """sha256 of every file under `path` (a file or a folder): proves an input unchanged."""
    if path.is_file():
        return {"": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def error_problems(res: Result, names: list[str]) -> list[str]:
    """What is wrong with an exit-2 stderr: exactly one `error:` line naming a file."""
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    if len(lines) != 1 or not lines[0].startswith("error: "):
        return [f"stderr is not one `error:` line: {res.err[-600:]!r}"]
    if not any(n in lines[0] for n in names):
        return [f"error line names none of {names}: {lines[0]!r}"]
    return []


def noise_free(err: str) -> str:
    """stderr without lines that are not the tool's own (library warnings, log records)."""
    return "".join(ln for ln in err.splitlines(keepends=True) if ln.startswith("error: "))


def outcome_problems(res: Result, names: list[str]) -> list[str]:
    """Problems any outcome can have: a code other than 0/2, a traceback, stray stderr."""
    if res.code not in (0, 2):
        return [f"exit {res.code}: {res.err[-800:]!r}"]
    if "Traceback" in res.err:
        return [f"traceback: {res.err[-800:]!r}"]
    if res.code == 2:
        return error_problems(res, names)
    if res.err.strip():
        return [f"exit 0 with stderr: {res.err[-400:]!r}"]
    return []


def leftovers(folder: Path, before: set[str]) -> list[str]:
    """Entries of `folder` that a failed run left (anything not there before it)."""
    return sorted(set(os.listdir(folder)) - before)


@dataclass
class Record:
    """One fuzzed input's outcome, for the figures and the failure list."""

    family: str
    kind: str
    detail: str
    command: str
    code: int | str
    verdict: str  # "equal", "refused", or "FAIL"
    problems: list[str]
    pending: str | None = None  # the KNOWN_PENDING item that explains this failure
    index: int = -1  # the input's number: E2NET_FUZZ_ONLY=index reruns it alone


@dataclass
class Campaign:
    seed: int
    n: int
    records: list[Record] = field(default_factory=list)

    def add(self, m: Mutant, command: str, res: Result, problems: list[str], quiet) -> None:
        """Record an outcome; `quiet` is the problem list with library noise dropped from
        stderr (so M1 alone explains a failure when it is empty)."""
        verdict = "FAIL" if problems else ("equal" if res.code == 0 else "refused")
        pending = None
        if problems:
            pending = m.pending if m.pending in KNOWN_PENDING else None
            if m.pending_in is not None and command not in m.pending_in:
                pending = None
            if pending is None and not quiet and "M1" in KNOWN_PENDING:
                pending = "M1"
        self.records.append(
            Record(m.family, m.kind, m.detail, command, res.code, verdict, problems, pending)
        )

    def failures(self, pending: bool) -> list[Record]:
        """Failures explained by a KNOWN_PENDING item (`pending`) or not."""
        return [r for r in self.records if r.verdict == "FAIL" and bool(r.pending) == pending]

    def figures(self) -> str:
        """Counts by family and kind: inputs, exit 0 equal, exit 2, failures."""
        rows: dict[tuple[str, str], list[int]] = {}
        for r in self.records:
            row = rows.setdefault((r.family, r.kind), [0, 0, 0, 0])
            col = {"equal": 0, "refused": 1}.get(r.verdict, 3 if r.pending else 2)
            row[col] += 1
        head = f"{'family':<9} {'kind':<22} {'equal':>6} {'exit2':>6} {'FAIL':>5} {'pending':>7}"
        lines = [head]
        for (fam, kind), (eq, ref, fail, pend) in sorted(rows.items()):
            lines.append(f"{fam:<9} {kind:<22} {eq:>6} {ref:>6} {fail:>5} {pend:>7}")
        tot = [sum(v[i] for v in rows.values()) for i in range(4)]
        inputs = len({r.index for r in self.records})
        lines.append(
            f"{'total':<32} {tot[0]:>6} {tot[1]:>6} {tot[2]:>5} {tot[3]:>7}"
            f"  ({inputs} inputs, {len(self.records)} runs)"
        )
        return "\n".join(lines)

    def describe(self, records: list[Record]) -> str:
        return "\n".join(
            f"- input {r.index} {r.family}/{r.kind} [{r.detail}] {r.command}: exit {r.code}"
            + (f" (pending {r.pending})" if r.pending else "")
            + ": "
            + "; ".join(p[:400] for p in r.problems)
            for r in records
        )
