"""The one policy for every folder a command writes: *result folders* (`result_folder`,
written whole, swapped in) and *work folders* (`work_folder`, accumulated, resumed).
See docs/reliability.md, "Output folders: nothing lost, nothing half-written".
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from e2net_eval.errors import InputError
from e2net_eval.util import lock
from e2net_eval.util.atomic import (
    is_temporary,
    make_temp_dir,
    mkdirs,
    remove_stale_temporaries,
    swap_in,
    write_text,
)
from e2net_eval.util.faults import fault_point
from e2net_eval.util.reading import os_error_text, write_error
from e2net_eval.util.signals import graceful_termination

MANIFEST = ".e2net-eval.json"


def _resolve(path: str | Path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def _within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_inputs(
    out: str | Path, inputs: Iterable[str | Path], may_be_inside: Iterable[str | Path] = ()
) -> None:
    """Refuse an OUT that is an input, holds an input, or sits inside one not allowed."""
    o = _resolve(out)
    allowed = {_resolve(p) for p in may_be_inside}
    for inp in inputs:
        if inp is None:
            continue
        i = _resolve(inp)
        if o == i:
            raise InputError(f"output folder is the input {inp} itself", path=out)
        if _within(i, o):
            raise InputError(
                f"output folder contains the input {inp}; it would be replaced", path=out
            )
        if _within(o, i) and i not in allowed:
            raise InputError(
                f"output folder is inside the input folder {inp}; choose a folder outside it",
                path=out,
            )


def check_output_file(
    path: str | Path, *, inputs: Iterable[str | Path] = (), read: Iterable[str | Path] = ()
) -> None:
    """A single output file (``--json``, ``-o FILE``), checked before work: not a folder, not inside
    an input folder of `inputs`, never one of the files the command reads (`read`)."""
    p = _resolve(path)
    if Path(path).is_dir():
        raise InputError("output is a folder, not a file", path=path)
    for inp in inputs:
        if inp is None:
            continue
        i = _resolve(inp)
        if p == i:
            raise InputError(f"output file is the input {inp} itself", path=path)
        if i in p.parents:
            raise InputError(f"output file is inside the input folder {inp}", path=path)
    for f in read:
        if p == _resolve(f):
            raise InputError("output file is one of the files this command reads", path=path)


def _files_below(folder: Path) -> list[str]:
    """Relative paths of every non-directory entry below `folder` (links not followed)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        base = Path(dirpath)
        for name in filenames + [d for d in dirnames if (base / d).is_symlink()]:
            found.append((base / name).relative_to(folder).as_posix())
    return sorted(found)


def read_manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_manifest(folder: Path, kind: str, *, files: bool = True) -> None:
    from e2net_eval import __version__

    data = {
        "written_by": "e2net-eval",
        "version": __version__,
        "kind": kind,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if files:
        data["files"] = [f for f in _files_below(folder) if f != MANIFEST]
    write_text(folder / MANIFEST, json.dumps(data, indent=2) + "\n")


def replaceable(out: Path, kind: str) -> None:
    """Raise unless every file in `out` was written there by e2net-eval as a `kind`."""
    manifest = read_manifest(out)
    present = [f for f in _files_below(out) if f != MANIFEST]
    if manifest is None or manifest.get("written_by") != "e2net-eval":
        example = f", e.g. {present[0]}" if present else ""
        raise InputError(
            f"not replaced: this folder was not written by e2net-eval (no {MANIFEST}){example}; "
            "move its files away or choose another output folder",
            path=out,
        )
    if manifest.get("kind") != kind:
        raise InputError(
            f"not replaced: this folder holds an e2net-eval {manifest.get('kind')!s} result, "
            f"not a {kind}; choose another output folder",
            path=out,
        )
    listed = set(manifest.get("files") or [])
    foreign = [f for f in present if f not in listed]
    if foreign:
        raise InputError(
            f"not replaced: {len(foreign)} file(s) here were not written by e2net-eval "
            f"(e.g. {foreign[0]}); move them away or choose another output folder",
            path=out,
        )


def _is_empty_dir(path: Path) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


def check_output(
    out: str | Path,
    *,
    kind: str,
    inputs: Iterable[str | Path] = (),
    may_be_inside: Iterable[str | Path] = (),
    overwrite: bool = False,
) -> Path:
    """Everything about OUT that can be refused before work starts; returns the path used
    (an OUT that is a symlink to a folder means that folder)."""
    out = Path(out)
    if out.is_symlink() and out.is_dir():
        out = _resolve(out)
    if os.path.lexists(out) and not out.is_dir():
        raise InputError("output exists and is not a folder", path=out)
    check_inputs(out, inputs, may_be_inside)
    try:
        if out.is_dir() and not _is_empty_dir(out):
            if not overwrite:
                raise InputError(
                    "output folder exists and is not empty (pass --overwrite to replace it)",
                    path=out,
                )
            replaceable(out, kind)
    except OSError as exc:
        raise InputError(
            f"cannot inspect the output folder ({os_error_text(exc)})", path=out
        ) from None
    return out


def _writable_parent(out: Path) -> None:
    try:
        mkdirs(out.parent)
    except OSError as exc:
        raise InputError(
            f"cannot create the output's parent folder ({os_error_text(exc)})", path=out
        ) from None


@contextlib.contextmanager
def result_folder(
    out: str | Path,
    *,
    kind: str,
    inputs: Iterable[str | Path] = (),
    may_be_inside: Iterable[str | Path] = (),
    overwrite: bool = False,
) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it becomes OUT. Enter it before the work:
    every refusal (and an unwritable OUT) then comes first."""
    inputs, may_be_inside = list(inputs), list(may_be_inside)
    checks = dict(
        kind=kind,
        inputs=inputs,
        may_be_inside=may_be_inside,
        overwrite=overwrite,
    )
    out = check_output(out, **checks)
    _writable_parent(out)
    with graceful_termination(), _locked_at(lock.lock_file_for(out), f"e2net-eval {kind}", out):
        remove_stale_temporaries(out.parent, out.name)
        # the folder may have changed while this process started: check again, locked
        check_output(out, **checks)
        try:
            tmp = make_temp_dir(out)
        except OSError as exc:
            raise InputError(f"cannot write here ({os_error_text(exc)})", path=out) from None
        try:
            yield tmp
            write_manifest(tmp, kind)
            fault_point("outdir.before_swap")
            swap_in(tmp, out)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            room = write_error(exc, out)  # disk full, file size limit: exit 2, one line
            if room is not None:
                raise room from None
            raise


#: What marks a run folder written before run folders had a manifest (2026-11-29).
LEGACY_MARKS = {"train-run": ("split.json",), "ablation-run": ("ablation_state.json",)}


@contextlib.contextmanager
def work_folder(
    run: str | Path,
    *,
    kind: str,
    inputs: Iterable[str | Path] = (),
    may_be_inside: Iterable[str | Path] = (),
    lock_name: str | None = None,
    who: str | None = None,
    sweep: Iterable[str | Path] | None = None,
) -> Iterator[Path]:
    """Hold a resumable run folder for the block; yields its path. The lock comes first (a
    busy run is refused whatever it holds), then the folder must be empty or a `kind` run.
    `lock_name` may be in a sub-folder; `sweep`: the folders to clear of temporaries
    (default: the whole run)."""
    run = Path(run)
    if os.path.lexists(run) and not run.is_dir():
        raise InputError("output exists and is not a folder", path=run)
    check_inputs(run, inputs, may_be_inside)
    try:
        mkdirs(run)
    except OSError as exc:
        raise InputError(f"cannot create the run folder ({os_error_text(exc)})", path=run) from None
    lock_name = lock_name or f".{kind}.lock"
    lock_path = run / lock_name
    with graceful_termination(), _locked_at(lock_path, who or f"e2net-eval {kind}", run):
        _check_run_kind(run, kind, ignore={Path(lock_name).parts[0]})
        for folder in [run] if sweep is None else [Path(f) for f in sweep]:
            if folder.is_dir():
                remove_temporaries_below(folder)
        _mark_run_folder(run, kind)
        yield run


def claim_run_folder(run: Path, kind: str, ignore: set[str]) -> None:
    """Make `run` a run folder of `kind`: refused when it holds anything but `ignore` and
    temporaries and is not one already; its manifest written when it has none."""
    _check_run_kind(run, kind, ignore)
    _mark_run_folder(run, kind)


def _mark_run_folder(run: Path, kind: str) -> None:
    """Write the manifest of a checked run folder that has none."""
    if read_manifest(run) is None:
        try:
            write_manifest(run, kind, files=False)
        except OSError as exc:
            raise InputError(f"cannot write here ({os_error_text(exc)})", path=run) from None


def _check_run_kind(run: Path, kind: str, ignore: set[str]) -> None:
    """Refuse a non-empty folder that is not a run of `kind` (nor a pre-manifest one)."""
    entries = [e for e in os.listdir(run) if e not in ignore and not is_temporary(e)]
    if not entries:
        return
    manifest = read_manifest(run)
    if manifest is not None and manifest.get("kind") == kind:
        return
    if manifest is None and any((run / f).is_file() for f in LEGACY_MARKS.get(kind, ())):
        return
    what = f"an e2net-eval {manifest.get('kind')}" if manifest else "not an e2net-eval run"
    raise InputError(
        f"this folder is {what}, not a {kind} folder, and is not empty; "
        "choose a new or empty folder",
        path=run,
    )


@contextlib.contextmanager
def _locked_at(path: Path, who: str, where: Path) -> Iterator[None]:
    try:
        fd = lock.acquire(path, who=who, where=where)
    except OSError as exc:
        raise InputError(f"cannot write here ({os_error_text(exc)})", path=where) from None
    try:
        yield
    finally:
        lock.release(fd, path)


def remove_temporaries_below(folder: Path) -> list[Path]:
    """Remove every temporary left by a killed run anywhere below `folder` (lock held)."""
    removed = []
    for dirpath, dirnames, _ in os.walk(folder):
        removed += remove_stale_temporaries(Path(dirpath))
        dirnames[:] = [d for d in dirnames if not is_temporary(d)]
    return removed
