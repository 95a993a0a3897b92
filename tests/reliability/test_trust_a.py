"""Issue 19, part A: files from others are data (S1 checkpoints, S2 lock files), spacings
that would give a silently wrong number are refused (W1, W2), Ctrl-C and the leftover sweep
(L1), and a checkpoint missing entries (C7)."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from tests.helpers.reliability import TRAIN, one_error_line, run_proc


class _Planted:
    """Unpickling this calls os.system: the payload a hostile run folder would carry."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plant(path, marker, *, legacy_pickle: bool = False) -> None:
    """Replace the checkpoint at `path` by one whose loading would create `marker`,
    keeping the real entries (a file that looks right to anything but its pickle)."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    payload["note"] = _Planted(marker)
    if legacy_pickle:  # a plain pickle, not torch's zip container
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path)


@pytest.mark.parametrize("legacy_pickle", [False, True], ids=["torch-zip", "plain-pickle"])
def test_s1_planted_checkpoint_code_never_runs(one_step_run, train_data, tmp_path, legacy_pickle):
    run = tmp_path / "run"
    shutil.copytree(one_step_run, run)
    marker = tmp_path / "pwned"
    # a plain pickle of tensors is refused at its first global (torch's storage rebuilder)
    named = "refused checkpoint" if legacy_pickle else "posix.system"
    best, last = run / "stage1" / "best.pt", run / "stage1" / "checkpoint_last.pt"
    _plant(best, marker, legacy_pickle=legacy_pickle)
    res = run_proc(
        "predict", run, "--data", train_data, "-o", tmp_path / "pred", "--config", "stage1"
    )
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, "best.pt", "refused checkpoint", named)
    assert not marker.exists()
    assert not (tmp_path / "pred").exists()
    _plant(last, marker, legacy_pickle=legacy_pickle)
    res = run_proc(
        "train", "stage1", "--data", train_data, "-o", run, "--resume", "--max-steps", "2"
    )
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, "checkpoint_last.pt", "refused checkpoint", named)
    assert not marker.exists()


def test_s1_a_pickle_torch_cannot_read_as_data_is_refused(tmp_path):
    """Protocol 4 (a FRAME opcode the weights-only reader does not take): refused, named."""
    from e2net_eval.errors import ReadError
    from e2net_eval.runtime.weights import load_data

    marker = tmp_path / "pwned"
    path = tmp_path / "best.pt"
    path.write_bytes(pickle.dumps({"model": _Planted(marker)}, protocol=4))
    with pytest.raises(ReadError, match="refused checkpoint") as err:
        load_data(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists()


def test_s1_checkpoints_load_as_data_and_round_trip(one_step_run, train_data, tmp_path):
    """What this version writes loads with weights_only=True, resumes and predicts."""
    run = tmp_path / "run"
    shutil.copytree(one_step_run, run)
    for name in ("best.pt", "checkpoint_last.pt"):
        payload = torch.load(run / "stage1" / name, map_location="cpu", weights_only=True)
        assert "model" in payload
    res = run_proc(
        "train",
        "stage1",
        "--data",
        train_data,
        "-o",
        run,
        "--resume",
        "--max-steps",
        "2",
        "--batch-size",
        "2",
        "--steps-per-epoch",
        "1",
        "--no-progress",
    )
    assert res.returncode == 0, res.stderr
    last = torch.load(run / "stage1" / "checkpoint_last.pt", weights_only=True)
    assert last["step"] == 2
    res = run_proc(
        "predict",
        run,
        "--data",
        train_data,
        "-o",
        tmp_path / "pred",
        "--config",
        "stage1",
        "--no-progress",
    )
    assert res.returncode == 0, res.stderr


def test_s1_older_checkpoint_with_numpy_random_state_still_resumes():
    """Checkpoints written before this change hold NumPy's state tuple (a uint32 array):
    it loads as data (the narrow NumPy allow-list) and restores the same random stream."""
    import numpy as np

    from e2net_eval.runtime.weights import load_data
    from e2net_eval.training import checkpoint as ckpt

    np.random.seed(11)
    old_style = {"rng": {"numpy": np.random.get_state()}}
    want = np.random.random_sample(5)
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"legacy-{os.getpid()}.pt")
    try:
        torch.save(old_style, path)
        loaded = load_data(path)
    finally:
        os.unlink(path)
    np.random.set_state(ckpt._numpy_state(loaded["rng"]["numpy"]))
    assert np.array_equal(np.random.random_sample(5), want)
    np.random.seed(11)
    new_style = ckpt.rng_states()["numpy"]
    np.random.set_state(ckpt._numpy_state(new_style))
    assert np.array_equal(np.random.random_sample(5), want)


@pytest.mark.parametrize("key", ["step", "rng", "model"])
def test_c7_resume_from_a_checkpoint_missing_an_entry(one_step_run, train_data, tmp_path, key):
    run = tmp_path / "run"
    shutil.copytree(one_step_run, run)
    last = run / "stage1" / "checkpoint_last.pt"
    payload = torch.load(last, map_location="cpu", weights_only=True)
    del payload[key]
    torch.save(payload, last)
    res = run_proc(
        "train", "stage1", "--data", train_data, "-o", run, "--resume", "--max-steps", "2"
    )
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, "checkpoint_last.pt", repr(key))


def test_c7_resume_from_a_checkpoint_with_a_wrong_entry(one_step_run, train_data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(one_step_run, run)
    last = run / "stage1" / "checkpoint_last.pt"
    payload = torch.load(last, map_location="cpu", weights_only=True)
    payload["optimizer"] = {"state": 3}
    torch.save(payload, last)
    res = run_proc(
        "train",
        "stage1",
        "--data",
        train_data,
        "-o",
        run,
        "--resume",
        *TRAIN[2:],
        "--max-steps",
        "2",
    )
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, "checkpoint_last.pt")


# ---------------------------------------------------------------------------------------
# S2: a lock path is never written through a planted link
# ---------------------------------------------------------------------------------------

VICTIM = b"a colleague's file\n"


def _planted_links(tmp_path, lock):
    """`lock` made a symlink to a victim file; the victim and its content."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.symlink_to(victim)
    return victim


def test_s2_result_folder_lock_symlink_is_refused(tmp_path):
    out = tmp_path / "phantom"
    victim = _planted_links(tmp_path, tmp_path / ".phantom.lock")
    res = run_proc("datasets", "phantom", out, "--cases", "1", "--size", "32", "--slices", "4", "4")
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, ".phantom.lock", "symlink")
    assert victim.read_bytes() == VICTIM
    assert not out.exists()


def test_s2_train_lock_symlink_is_refused(train_data, tmp_path):
    run = tmp_path / "run"
    victim = _planted_links(tmp_path, run / "stage1" / ".train.lock")
    res = run_proc("train", "stage1", "--data", train_data, "-o", run, *TRAIN)
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, ".train.lock", "symlink")
    assert victim.read_bytes() == VICTIM


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "fifo", "directory"])
@pytest.mark.parametrize("waiting", [False, True], ids=["exclusive", "waiting"])
def test_s2_every_lock_refuses_what_is_not_its_own_regular_file(tmp_path, kind, waiting):
    from e2net_eval.errors import InputError
    from e2net_eval.util import lock

    path = tmp_path / ".out.lock"
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    if kind == "symlink":
        path.symlink_to(victim)
    elif kind == "hardlink":
        os.link(victim, path)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    hold = lock.hold_waiting(path) if waiting else lock.hold(path, who="x", where=tmp_path)
    with pytest.raises(InputError) as err, hold:
        pass
    assert str(path) in str(err.value)
    assert victim.read_bytes() == VICTIM
    assert os.path.lexists(path)


def test_s2_training_log_is_not_appended_through_a_symlink(one_step_run, train_data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(one_step_run, run)
    log = run / "stage1" / "metrics.jsonl"
    log.unlink()
    victim = tmp_path / "empty.txt"  # nothing for the log's reconciliation to drop
    victim.write_bytes(b"")
    log.symlink_to(victim)
    res = run_proc(
        "train",
        "stage1",
        "--data",
        train_data,
        "-o",
        run,
        "--resume",
        *TRAIN[2:],
        "--max-steps",
        "2",
    )
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, "metrics.jsonl", "symlink")
    assert victim.read_bytes() == b""


# ---------------------------------------------------------------------------------------
# W1: a spacing is finite, in range, and the affine's; W2: any anisotropy, bounded memory
# ---------------------------------------------------------------------------------------

#: NIfTI-1 header fields (offset, format) poked below.
PIXDIM_XYZ, QFORM_CODE, SFORM_CODE, SROW_X = (80, "<3f"), (252, "<h"), (254, "<h"), (280, "<4f")


def _poke(path, field, *values) -> None:
    import struct

    offset, fmt = field
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, offset, *values)
    path.write_bytes(bytes(raw))


def _both(root, cid, field, *values) -> None:
    """The same header change in a case's image and label (they must agree)."""
    for stem in ("volume", "segmentation"):
        _poke(root / f"{stem}-{cid}.nii", field, *values)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param((PIXDIM_XYZ, 1.0, 1.0, 1.0), id="pixdim-1-under-another-affine"),
        pytest.param((PIXDIM_XYZ, float("nan"), float("nan"), float("nan")), id="pixdim-nan"),
        pytest.param((PIXDIM_XYZ, 0.0, 0.0, 0.0), id="pixdim-0"),
        pytest.param((PIXDIM_XYZ, 1e12, 12.07, 6.0), id="pixdim-1e12"),
        pytest.param((SROW_X, float("nan"), 0.0, 0.0, 0.0), id="sform-nan"),
    ],
)
def test_w1_a_spacing_that_is_not_the_affines_is_refused(data, tmp_path, change):
    from tests.helpers.reliability import copy_of

    root = copy_of(data, "lits", tmp_path / "in")
    _both(root, "1", *change)
    res = run_proc("datasets", "check", root)
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, "case 1", "-1.nii")


def test_w1_evaluate_refuses_a_reference_pixdim_that_lies(data, tmp_path):
    """The issue's case: pixdim 1 mm under a larger-voxel affine scored ASSD in the wrong
    unit with exit 0. Refused, naming the reference file and case; nothing written."""
    from tests.helpers.reliability import copy_of

    ref = copy_of(data, "lits", tmp_path / "ref")
    pred = tmp_path / "pred"
    pred.mkdir()
    for cid in ("0", "1", "2"):
        shutil.copy(ref / f"segmentation-{cid}.nii", pred / f"{cid}.nii")
    _poke(ref / "segmentation-2.nii", PIXDIM_XYZ, 1.0, 1.0, 1.0)
    res = run_proc("evaluate", pred, ref, "-o", tmp_path / "out", "--no-progress")
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, "case 2", "segmentation-2.nii", "pixdim", "affine")
    assert not (tmp_path / "out").exists()


def test_w1_a_prediction_whose_pixdim_contradicts_its_affine_is_refused(data, tmp_path):
    pred = tmp_path / "pred"
    pred.mkdir()
    for cid in ("0", "1", "2"):
        shutil.copy(data / "lits" / f"segmentation-{cid}.nii", pred / f"{cid}.nii")
    _poke(pred / "1.nii", PIXDIM_XYZ, 1.0, 1.0, 1.0)
    res = run_proc("evaluate", pred, data / "lits", "-o", tmp_path / "out", "--no-progress")
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, "case 1", "1.nii", "pixdim")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("codes", [(0, 0), (1, 0), (0, 1)], ids=["none", "qform", "sform"])
def test_w1_every_affine_source_agreeing_with_pixdim_reads_as_before(data, tmp_path, codes):
    """q/sform codes 0 (nibabel builds the affine from pixdim), a qform only, an sform
    only: pixdim and the affine agree, the case reads with the same spacing."""
    from e2net_eval.data import open_dataset
    from tests.helpers.reliability import copy_of

    root = copy_of(data, "lits", tmp_path / "in")
    want = open_dataset(root).load("1")
    _both(root, "1", QFORM_CODE, codes[0])
    _both(root, "1", SFORM_CODE, codes[1])
    got = open_dataset(root).load("1")
    assert got.spacing == want.spacing
    assert res_ok(run_proc("datasets", "check", root))


def res_ok(res) -> bool:
    assert res.returncode == 0, res.stderr
    return True


@pytest.mark.parametrize(
    "spacing", [("0", "0"), ("nan", "0.7"), ("0.7", "inf")], ids=["zero", "nan", "inf"]
)
def test_w1_dicom_pixel_spacing_must_be_finite_and_positive(data, tmp_path, spacing):
    import pydicom

    from tests.helpers.reliability import copy_of

    root = copy_of(data, "ircadb", tmp_path / "in")
    patient = sorted(p for p in root.iterdir() if p.is_dir())[0]
    for f in sorted(p for p in patient.rglob("*") if p.is_file()):  # image and masks
        ds = pydicom.dcmread(f)
        ds.PixelSpacing = list(spacing)
        ds.save_as(f)
    res = run_proc("datasets", "check", root)
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, "PixelSpacing", "PATIENT_DICOM")


def test_w2_offset_box_is_bounded_whatever_the_anisotropy():
    """The scan's offset box grew with the spacing ratio (pixdim 1e12: OOM-killed); it is
    bounded now, and distances stay exact (the k-d tree resolves what the scan leaves)."""
    import numpy as np

    from e2net_eval.metrics.nearest import directed_kdtree, directed_scan, scan_offsets

    bound = 1 << 16  # nearest.MAX_BOX
    for spacing in [(1.0, 1.0, 1e6), (1e5, 1.0, 1.0), (0.5, 2e4, 0.5)]:
        offsets, _, _, half = scan_offsets(spacing)
        assert len(offsets) <= bound
        assert np.prod([2 * h + 1 for h in half]) <= bound
    rng = np.random.default_rng(19)
    src, dst = rng.random((2, 12, 14, 9)) < [[[[0.05]]], [[[0.08]]]]
    for spacing in [(1.0, 1.0, 1e6), (1e12, 0.7, 0.7), (0.8, 1e20, 3.0)]:
        ours, ref = directed_scan(src, dst, spacing), directed_kdtree(src, dst, spacing)
        assert np.allclose(ours, ref, rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------------------
# L1: Ctrl-C is exit 130 wherever it lands; the sweep removes only our own temporaries
# ---------------------------------------------------------------------------------------

HOOK = Path(__file__).resolve().parent / "interrupt_at_import"


@pytest.mark.parametrize(
    "module", ["click", "e2net_eval.errors", "e2net_eval.commands.evaluate", "numpy"]
)
def test_l1_ctrl_c_during_start_up_exits_130(data, tmp_path, module):
    """SIGINT while the command line loads (module level of cli.py), while a command's
    module loads, and while the command imports its libraries."""
    import subprocess

    from tests.helpers.reliability import cli_cmd, env

    e = env(E2NET_TEST_SIGINT_AT_IMPORT=module)
    e["PYTHONPATH"] = f"{HOOK}{os.pathsep}{e['PYTHONPATH']}"
    pred = tmp_path / "pred"
    pred.mkdir()
    shutil.copy(data / "lits" / "segmentation-0.nii", pred / "0.nii")
    args = ["evaluate", pred, data / "lits", "-o", tmp_path / "out", "--no-progress"]
    res = subprocess.run(
        cli_cmd(*args), env=e, capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert res.returncode == 130, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines == ["aborted"], res.stderr
    assert not (tmp_path / "out").exists()


def test_l1_an_error_raised_while_ctrl_c_is_handled_is_still_130(monkeypatch, capsys):
    """A cleanup that fails after Ctrl-C (a worker pool broken by it) was exit 3."""
    from e2net_eval import cli

    def interrupted_then_broken(**kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("a process in the pool was terminated abruptly") from None

    monkeypatch.setattr(cli.cli, "main", interrupted_then_broken)
    with pytest.raises(SystemExit) as exit_:
        cli.main([])
    assert exit_.value.code == 130
    assert capsys.readouterr().err.strip() == "aborted"


def test_l1_sweep_spares_a_users_folder_named_like_a_temporary(tmp_path):
    """Only entries whose name carries this tool's check digits are swept."""
    from e2net_eval.util.atomic import make_temp_dir
    from e2net_eval.util.outdir import work_folder

    users = [tmp_path / ".phantom.abcdefgh.tmp", tmp_path / ".phantom.0000ffff.tmp"]
    for folder in users:
        folder.mkdir()
        (folder / "thesis.tex").write_text("years of work")
    stale = make_temp_dir(tmp_path / "phantom")  # what a killed run of ours leaves
    res = run_proc(
        "datasets",
        "phantom",
        tmp_path / "phantom",
        "--cases",
        "1",
        "--size",
        "32",
        "--slices",
        "4",
        "4",
    )
    assert res.returncode == 0, res.stderr
    assert not stale.exists()
    for folder in users:
        assert (folder / "thesis.tex").read_text() == "years of work"
    run = tmp_path / "run"
    with work_folder(run, kind="train-run"):
        pass
    mine = run / ".notes.abcdefgh.tmp"
    mine.mkdir()
    (mine / "n.txt").write_text("mine")
    with work_folder(run, kind="train-run"):
        pass
    assert (mine / "n.txt").read_text() == "mine"


def test_c7_a_refused_resume_names_the_checkpoint(one_step_run, train_data, tmp_path):
    """Other settings than the run's: the one line names the checkpoint it compared."""
    run = tmp_path / "run"
    shutil.copytree(one_step_run, run)
    res = run_proc(
        "train",
        "stage1",
        "--data",
        train_data,
        "-o",
        run,
        "--resume",
        "--max-steps",
        "2",
        "--batch-size",
        "4",
    )
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, "checkpoint_last.pt", "batch_size")


def test_w1_a_dicom_series_without_pixel_spacing_is_not_read_as_1mm(data, tmp_path):
    import pydicom

    from tests.helpers.reliability import copy_of

    root = copy_of(data, "ircadb", tmp_path / "in")
    patient = sorted(p for p in root.iterdir() if p.is_dir())[0]
    for f in sorted(p for p in patient.rglob("*") if p.is_file()):  # image and masks
        ds = pydicom.dcmread(f)
        del ds.PixelSpacing
        ds.save_as(f)
    res = run_proc("datasets", "check", root)
    assert res.returncode == 2, res.stderr
    one_error_line(res.stderr, "no PixelSpacing", "PATIENT_DICOM")
