"""Write outputs under a temporary name and rename, so nothing is ever half-written.

Temporary names, their check digits, modes and the folder exchange: docs/reliability.md
("Output folders", "File modes"). `is_temporary` recognises only names whose check digits
match, so a sweep never removes a user's file that merely looks like a temporary.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import os
import re
import secrets
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from e2net_eval.errors import InputError
from e2net_eval.util.faults import fault_point
from e2net_eval.util.reading import os_error_text, write_error

_TMP_RE = re.compile(
    r"^\.(?P<name>.+)\.(?P<rand>[a-z0-9_]{4})(?P<check>[0-9a-f]{4})\.tmp(\.[A-Za-z0-9.]+)?$"
)
_RANDOM = "abcdefghijklmnopqrstuvwxyz0123456789_"


def current_umask() -> int:
    """The process umask, read without changing it where the kernel tells it (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting (not thread-safe, but brief)
    os.umask(mask)
    return mask


def file_mode() -> int:
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    return 0o777 & ~current_umask()


def _check_digits(name: str, rand: str) -> str:
    return hashlib.sha256(f"e2net-eval temporary\0{name}\0{rand}".encode()).hexdigest()[:4]


def _temporary_names(name: str, suffix: str) -> Iterator[str]:
    """Fresh candidate names ``.<name>.<random><check>.tmp<suffix>`` (see the module doc)."""
    for _ in range(10_000):
        rand = "".join(secrets.choice(_RANDOM) for _ in range(4))
        yield f".{name}.{rand}{_check_digits(name, rand)}.tmp{suffix}"
    raise FileExistsError(errno.EEXIST, "no free temporary name", name)


def is_temporary(name: str, target: str | None = None) -> bool:
    """True for this module's temporary names (of `target`, when given), check digits and all."""
    m = _TMP_RE.match(name)
    if m is None or m.group("check") != _check_digits(m.group("name"), m.group("rand")):
        return False
    if target is None:
        return True
    stem = m.group("name")
    return stem == target or stem == Path(target).stem or stem.startswith(f"{target}.old")


def make_temp_file(path: Path) -> Path:
    """An empty temporary file beside `path`, keeping its suffix, with the umask's mode."""
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    for name in _temporary_names(path.stem, suffix):
        tmp = path.parent / name
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        try:
            os.fchmod(fd, file_mode())
        finally:
            os.close(fd)
        return tmp
    raise AssertionError("unreachable")  # _temporary_names raises when it runs out


def make_temp_dir(path: Path, tag: str = "") -> Path:
    """An empty temporary folder beside `path` with the umask's mode."""
    for name in _temporary_names(f"{path.name}{tag}", ""):
        tmp = path.parent / name
        try:
            os.mkdir(tmp, 0o700)
        except FileExistsError:
            continue
        os.chmod(tmp, dir_mode())
        return tmp
    raise AssertionError("unreachable")  # _temporary_names raises when it runs out


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.
    It keeps the final suffixes (``.x.abc123de.tmp.nii.gz``) for libraries that go by them."""
    path = Path(path)
    try:
        mkdirs(path.parent)
        tmp_path = make_temp_file(path)
    except OSError as exc:  # an unwritable place: the user's to fix, one line
        raise InputError(f"cannot write here ({os_error_text(exc)})", path=path) from None
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        room = write_error(exc, path)
        if room is not None:
            raise room from None
        raise


def mkdirs(path: Path) -> None:
    """`mkdir -p` (modes from the umask, as mkdir does)."""
    path.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Delay SIGTERM/SIGINT/SIGHUP for a few system calls that must not be split."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where not available."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def swap_in(tmp: Path, path: Path) -> None:
    """Put the finished folder `tmp` at `path` (one exchange where the kernel allows, else
    the old one renamed aside first); the old set, now a temporary, is deleted last."""
    with signals_held():
        fault_point("swap.before")
        if not os.path.lexists(path):
            os.rename(tmp, path)
            return
        if _exchange(tmp, path):
            old = tmp
        else:
            old = make_temp_dir(path, ".old")
            os.rmdir(old)
            os.rename(path, old)
            os.rename(tmp, path)
        fault_point("swap.after")
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; it replaces `path` only if the block succeeds.
    No checks on what `path` held: user-visible folders go through `util.outdir`."""
    path = Path(path)
    mkdirs(path.parent)
    tmp = make_temp_dir(path)
    try:
        yield tmp
        swap_in(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        room = write_error(exc, path)
        if room is not None:
            raise room from None
        raise


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def remove_stale_temporaries(folder: Path, target: str | None = None) -> list[Path]:
    """Delete temporaries of this module in `folder` (of `target` only, when given). Only
    under the lock every writer of those targets holds: then a killed run left them."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not is_temporary(entry.name, target):
            continue
        p = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
        removed.append(p)
    return removed
