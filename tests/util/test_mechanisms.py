"""The shared mechanisms behind the fifteen fixes, one by one: the output-folder policy, the
lock, the atomic swap, fault points, reader errors and the die-with-parent workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from e2net_eval.errors import InputError, ReadError
from e2net_eval.util import faults, lock
from e2net_eval.util.atomic import (
    atomic_path,
    current_umask,
    is_temporary,
    make_temp_dir,
    make_temp_file,
    swap_in,
)
from e2net_eval.util.outdir import (
    MANIFEST,
    check_inputs,
    read_manifest,
    result_folder,
    work_folder,
)
from e2net_eval.util.reading import decoding, file_problem, readable_file


def _write_set(out, kind="thing", files=("a.txt", "sub/b.txt"), **kw):
    with result_folder(out, kind=kind, **kw) as tmp:
        for name in files:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(name)


def test_result_folder_replaces_only_what_it_wrote(tmp_path):
    out = tmp_path / "out"
    _write_set(out)
    assert read_manifest(out)["files"] == ["a.txt", "sub/b.txt"]
    with pytest.raises(InputError, match="--overwrite"):
        _write_set(out)
    _write_set(out, files=("c.txt",), overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "c.txt"]
    (out / "mine.txt").write_text("a user's file")
    with pytest.raises(InputError, match="mine.txt"):
        _write_set(out, overwrite=True)
    (out / "mine.txt").unlink()
    with pytest.raises(InputError, match="holds an e2net-eval thing"):
        _write_set(out, kind="other", overwrite=True)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x").write_text("x")
    with pytest.raises(InputError, match="not written by e2net-eval"):
        _write_set(foreign, overwrite=True)
    assert (foreign / "x").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign", "out"]  # no leftovers


def test_a_failed_block_leaves_the_old_set(tmp_path):
    out = tmp_path / "out"
    _write_set(out)
    with pytest.raises(RuntimeError), result_folder(out, kind="thing", overwrite=True) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("boom")
    assert sorted(p.name for p in out.rglob("*")) == [MANIFEST, "a.txt", "b.txt", "sub"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_inputs_are_guarded_in_both_directions(tmp_path):
    data = tmp_path / "a" / "data"
    data.mkdir(parents=True)
    for out in (data, tmp_path / "a", tmp_path, data / "sub"):
        with pytest.raises(InputError):
            check_inputs(out, [data])
    check_inputs(data / "sub", [data], may_be_inside=[data])  # allowed where a command says
    with pytest.raises(InputError):
        check_inputs(data, [data], may_be_inside=[data])
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "a")
    with pytest.raises(InputError, match="contains the input"):
        check_inputs(link, [data])


def test_one_writer_per_output_and_stale_temporaries_go(tmp_path):
    out = tmp_path / "out"
    stale = make_temp_dir(out)  # as a SIGKILLed run leaves it
    (stale / "x").write_text("x")
    with result_folder(out, kind="thing") as tmp:
        assert not stale.exists()
        (tmp / "a").write_text("a")
        with pytest.raises(lock.Busy, match=f"pid {os.getpid()}"):
            _write_set(out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_lock_dies_with_its_holder(tmp_path):
    path = tmp_path / ".x.lock"
    code = (
        "import sys, time; from e2net_eval.util import lock; "
        "lock.acquire(sys.argv[1], who='t', where='w'); print('held', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(lock.Busy, match=f"pid {holder.pid}"):
            lock.acquire(path, who="t", where="w")
    finally:
        holder.kill()
        holder.wait()
    fd = lock.acquire(path, who="t", where="w")  # SIGKILLed holder: free at once
    lock.release(fd, path)
    assert not path.exists()


def test_work_folder_refuses_a_folder_that_is_not_a_run(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "thesis.tex").write_text("x")
    with pytest.raises(InputError, match="not an e2net-eval run"):
        with work_folder(docs, kind="train-run"):
            pass
    run = tmp_path / "run"
    with work_folder(run, kind="train-run"):
        with pytest.raises(lock.Busy):
            with work_folder(run, kind="train-run"):
                pass
        stale = make_temp_file(run / "ckpt.pt")  # as a kill leaves it
        stale.write_text("stale")
    with pytest.raises(InputError, match="e2net-eval train-run"):
        with work_folder(run, kind="ablation-run"):
            pass
    with work_folder(run, kind="train-run"):
        assert not stale.exists()
    legacy = tmp_path / "legacy"  # a run from before markers existed
    legacy.mkdir()
    (legacy / "split.json").write_text("{}")
    with work_folder(legacy, kind="train-run"):
        pass
    assert read_manifest(legacy)["kind"] == "train-run"


def test_swap_exchanges_and_removes_the_old(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old").write_text("old")
    new = make_temp_dir(out)
    (new / "new").write_text("new")
    swap_in(new, out)
    assert [p.name for p in out.iterdir()] == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_temporary_names_and_modes(tmp_path):
    with atomic_path(tmp_path / "x.nii.gz") as tmp:
        assert is_temporary(tmp.name, "x.nii.gz") and tmp.name.endswith(".nii.gz")
        assert oct(tmp.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())
        tmp.write_bytes(b"1")
    assert not is_temporary("x.nii.gz") and not is_temporary(".hidden")
    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        d = make_temp_dir(tmp_path / "y")
        assert d.stat().st_mode & 0o777 == 0o750
    finally:
        os.umask(old)


def test_fault_points(monkeypatch):
    monkeypatch.setenv(faults.ENV, "a.b@2:raise,c")
    faults._hits.clear()
    faults.fault_point("a.b")  # first time: nothing
    with pytest.raises(faults.InjectedFault):
        faults.fault_point("a.b")
    faults.fault_point("a.b")  # third: nothing
    faults.fault_point("other")
    monkeypatch.setenv(faults.ENV, "x:explode")
    with pytest.raises(ValueError, match="unknown action"):
        faults.fault_point("x")
    monkeypatch.delenv(faults.ENV)
    faults.fault_point("c")


def test_reader_errors_say_the_cause(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert file_problem(loop)[0] == "symlink loop"
    (tmp_path / "dir.nii").mkdir()
    assert "directory" in file_problem(tmp_path / "dir.nii")[0]
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert "broken symlink" in file_problem(tmp_path / "dangling")[0]
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ReadError, match="empty file"):
        readable_file(tmp_path / "empty", "7")
    with pytest.raises(ReadError, match=r"case 7: .*x\.bin: corrupt or unsupported thing \(boom\)"):
        with decoding(tmp_path / "x.bin", "7", "thing"):
            raise ValueError("boom")
    with pytest.raises(ReadError, match="too large"):
        with decoding(tmp_path / "x.bin", "7", "thing"):
            raise MemoryError
    with pytest.raises(ReadError, match="permission denied"):
        with decoding(tmp_path / "x.bin", "7", "thing"):
            raise PermissionError(13, "Permission denied")


def test_graceful_termination_runs_cleanup(tmp_path):
    code = (
        "import os, signal, sys, time\n"
        "from pathlib import Path\n"
        "from e2net_eval.util.outdir import result_folder\n"
        "with result_folder(Path(sys.argv[1]), kind='t') as tmp:\n"
        "    (tmp / 'x').write_text('x')\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
