"""One way to fail when a file cannot be read: `ReadError`, one line, the true cause.

Every reader opens through `readable_file` and decodes inside `decoding`: docs/reliability.md,
"Reading: one error type, and the real cause".
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from e2net_eval.errors import InputError, ReadError

_OS_WORDS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ELOOP: "symlink loop",
    errno.EISDIR: "is a directory, not a file",
    errno.ENOENT: "file not found",
    errno.ENOTDIR: "a parent of this path is not a folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.EIO: "input/output error (failing disk or network file system?)",
    errno.ENOSPC: "no space left on device",
    errno.EFBIG: "file too large (file size limit)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EMFILE: "too many open files",
    errno.ENOMEM: "out of memory",
}


#: Errors of a write that ran out of room: the output cannot be written, which is the
#: user's environment, not a bug (exit 2, nothing left half-written).
OUT_OF_ROOM = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


class NoRoom(InputError):
    """A write that ran out of room; `reason` in plain words."""

    def __init__(self, reason: str, path: str | Path):
        self.reason = reason
        super().__init__(f"cannot write the output ({reason})", path=path)


def write_error(exc: BaseException, path: str | Path) -> NoRoom | None:
    """The one-line InputError of a write to `path` that ran out of room, or None for any other
    error; a `NoRoom` of a file inside `path` (a temporary's) is said of `path`."""
    if isinstance(exc, NoRoom):
        return NoRoom(exc.reason, path)
    if isinstance(exc, OSError) and exc.errno in OUT_OF_ROOM:
        return NoRoom(os_error_text(exc), path)
    return None


def os_error_text(exc: OSError) -> str:
    """Plain words for an OSError: its errno's meaning, never the library's guess."""
    words = _OS_WORDS.get(exc.errno or -1)
    if words:
        return words
    return " ".join(str(exc.strerror or exc).split()) or type(exc).__name__


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3g} GiB"


def file_problem(
    path: str | Path, what: str = "file", *, empty_ok: bool = False
) -> tuple[str | None, os.stat_result | None]:
    """(why `path` is not a readable non-empty regular file or None, its stat when it is one),
    so an entry under a looked-up name that is unusable is reported, not taken as absent.
    `empty_ok`: an empty regular file passes (its reader reports it)."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT and os.path.islink(path):
            return f"broken symlink (to {os.readlink(path)})", None
        return os_error_text(exc), None
    if stat.S_ISDIR(st.st_mode):
        return f"is a directory, not a {what}", st
    if not stat.S_ISREG(st.st_mode):
        return f"not a regular file (expected a {what})", st
    if st.st_size == 0 and not empty_ok:
        return f"empty file (0 bytes), not a {what}", st
    return None, st


def readable_file(path: str | Path, case: str | None = None, what: str = "file") -> os.stat_result:
    """`stat` of an existing, non-empty regular file (symlinks followed), or a ReadError
    that says why not (missing, broken symlink, symlink loop, a directory, empty...)."""
    problem, st = file_problem(path, what)
    if problem is not None:
        raise ReadError(problem, case=case, path=path)
    assert st is not None
    return st


@contextlib.contextmanager
def decoding(path: str | Path, case: str | None = None, what: str = "file") -> Iterator[None]:
    """Turn any failure of a decoding library inside the block into one ReadError line
    (`InputError`s pass unchanged)."""
    try:
        yield
    except InputError:
        raise
    except MemoryError:
        raise ReadError(
            f"{what} is too large to read into this machine's memory", case=case, path=path
        ) from None
    except OSError as exc:
        if exc.errno is None:  # gzip.BadGzipFile, zipfile errors and the like: content
            raise ReadError(f"corrupt {what} ({_brief(exc)})", case=case, path=path) from None
        raise ReadError(os_error_text(exc), case=case, path=path) from None
    except Exception as exc:  # every decoder raises its own types; all mean "cannot decode"
        raise ReadError(
            f"corrupt or unsupported {what} ({_brief(exc)})", case=case, path=path
        ) from None


def _brief(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    if not text:
        return name
    return text if len(text) <= 160 else text[:157] + "..."


def memory_limit_bytes() -> int | None:
    """Physical memory, or the cgroup's limit when lower (None when unknown)."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        pass
    for cg in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(cg).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**62:
            limits.append(int(text))
    return min(limits) if limits else None
