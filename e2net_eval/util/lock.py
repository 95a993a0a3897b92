"""One writer per output: a kernel ``flock`` on a small file that names its holder's pid
(docs/reliability.md, "Locks"). The file is removed on release; a waiter that locked a file
removed under it retries. A lock path is opened without following a symlink and must be a
regular file with one link (`open_regular`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from e2net_eval.errors import InputError
from e2net_eval.util.atomic import file_mode, mkdirs
from e2net_eval.util.reading import os_error_text


class Busy(InputError):
    """Another process holds the lock (exit 2: the output is in use)."""


def open_regular(path: Path, flags: int, *, what: str = "lock file", links: bool = False) -> int:
    """The fd of ``os.open`` never through a planted link: a symlink, a non-regular file, or
    (unless `links`) a hard-linked one is an `InputError` naming `path`, left as it is."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, file_mode())
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(
                f"{what} is a symlink; refusing to write through it (remove it if no "
                "e2net-eval runs here)",
                path=path,
            ) from None
        raise InputError(f"cannot open the {what} ({os_error_text(exc)})", path=path) from None
    st = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(st.st_mode):
        problem = f"{what} is not a regular file; refusing to write to it"
    elif st.st_nlink > 1 and not links:
        problem = f"{what} has {st.st_nlink} hard links; refusing to write to a shared file"
    if problem:
        os.close(fd)
        raise InputError(f"{problem} (remove it if no e2net-eval runs here)", path=path)
    return fd


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "?"
    return text if text.isdigit() else "?"


def _lock(lock_path: Path, *, wait: bool, who: str = "", where: Path | str = "") -> int:
    """Take the lock (waiting, or raising `Busy` naming the holder), write our pid; the fd."""
    lock_path = Path(lock_path)
    mkdirs(lock_path.parent)
    for _ in itertools.count() if wait else range(100):
        fd = open_regular(lock_path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            holder = _holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise Busy(
                    f"another {who} (pid {holder}) is writing here; wait for it to finish",
                    path=where,
                ) from None
            raise
        try:
            same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the previous holder removed the file we locked: take the new one
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd
    raise Busy("could not take the lock (it keeps changing hands)", path=where)


def acquire(lock_path: Path, *, who: str, where: Path | str) -> int:
    """Take the lock at `lock_path` or raise `Busy` naming the holder; returns the fd."""
    return _lock(lock_path, wait=False, who=who, where=where)


def release(fd: int, lock_path: Path) -> None:
    """Remove the lock file (still holding it, so no one else can be mid-way) and unlock."""
    with contextlib.suppress(OSError):
        if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
            os.unlink(lock_path)
    os.close(fd)


@contextlib.contextmanager
def hold(lock_path: str | Path, *, who: str, where: Path | str) -> Iterator[None]:
    """Hold the lock at `lock_path` for the block; `Busy` (exit 2) if another process has it."""
    lock_path = Path(lock_path)
    fd = acquire(lock_path, who=who, where=where)
    try:
        yield
    finally:
        release(fd, lock_path)


@contextlib.contextmanager
def hold_waiting(lock_path: str | Path) -> Iterator[None]:
    """Hold the lock at `lock_path` for the block, waiting while another process has it
    (short sections over shared state: a run's split and slice cache)."""
    fd = _lock(Path(lock_path), wait=True, where=lock_path)
    try:
        yield
    finally:
        release(fd, Path(lock_path))


def lock_file_for(out: Path) -> Path:
    """Where the lock of output `out` lives: beside it (the folder itself gets swapped)."""
    return out.parent / f".{out.name}.lock"
