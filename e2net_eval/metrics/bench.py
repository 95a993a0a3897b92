"""`e2net-eval bench metrics`: the full score set of a paper-size case, ours vs medpy, and
the whole `evaluate` command against its read floor.

Generates a realistic liver+tumour reference (a large smooth liver blob with a few
tumours) and a perturbed prediction, writes both as ``.nii.gz``, then times in one run:
reading the two files, our `score_case`, and medpy's ``dc + assd + hd + asd`` per region
(the calls the LiTS scorer made). Values must agree (overlaps to 1e-9, distances to 1e-6
relative); RMSD agreement with medpy is checked by the test-suite on smaller volumes.

`run_evaluate_benchmark` writes a LiTS-layout set of such cases and times the whole
``e2net-eval evaluate`` command in a fresh process (imports, reads, scoring, workers,
outputs) against its floor: the time to read the set's label files with nibabel divided by
the number of workers, plus 0.5 s to start.
"""

from __future__ import annotations

import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage

import e2net_eval
from e2net_eval.metrics.case import score_case
from e2net_eval.util.imports import import_nibabel

nib = import_nibabel()

OVERLAP_TOL = 1e-9
DISTANCE_RTOL = 1e-6


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], cells: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1] of `shape` (cubic upsampling of a coarse grid)."""
    coarse = rng.uniform(-1, 1, size=(cells, cells, max(3, cells * 2 // 3)))
    zoom = [s / c for s, c in zip(shape, coarse.shape, strict=True)]
    out = ndimage.zoom(coarse, zoom, order=3, mode="nearest")
    return out[: shape[0], : shape[1], : shape[2]].astype(np.float32)


def make_case(shape: tuple[int, int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(reference, prediction) uint8 label volumes: liver blob with tumours, and a perturbation.

    The liver fills about 40% x 35% x 55% of the volume's extent; 5 tumours of radius
    about 2..5% of the in-plane size; the prediction moves the liver boundary by smooth noise of
    a few voxels, shifts and resizes tumours, misses the smallest and adds a false one.
    """
    rng = np.random.default_rng(seed)
    sx, sy, sz = shape
    centre = np.array([0.45 * sx, 0.40 * sy, 0.5 * sz])
    radii = np.array([0.20 * sx, 0.17 * sy, 0.28 * sz])
    lo = np.maximum((centre - 1.4 * radii).astype(int), 0)
    hi = np.minimum((centre + 1.4 * radii).astype(int), shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    bshape = tuple(int(b - a) for a, b in zip(lo, hi, strict=True))
    grids = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    r2 = sum(
        ((g - c) / r).astype(np.float32) ** 2 for g, c, r in zip(grids, centre, radii, strict=True)
    )
    ref_field = r2 + 0.25 * _smooth_noise(rng, bshape, 6)
    pred_field = ref_field + 0.06 * _smooth_noise(rng, bshape, 10)
    ref = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    ref[box] = ref_field < 1.0
    pred[box] = pred_field < 1.0
    # Tumours: separate spheres inside the liver (radius in first-axis voxels).
    vox = np.array([1.0, sy / sx, sz / sx * 3.0])  # fewer slices than pixels: anisotropic
    offsets = np.array(
        [
            [0.0, 0.0, 0.0],
            [-0.45, -0.3, -0.3],
            [0.45, 0.25, -0.25],
            [-0.25, 0.45, 0.35],
            [0.35, -0.45, 0.4],
        ]
    )
    for k, offset in enumerate(offsets):
        c = centre + (offset + rng.uniform(-0.05, 0.05, 3)) * radii
        rad = sx * rng.uniform(0.02, 0.05) * (0.3 if k == 0 else 1.0)
        _ball(ref, c, rad, vox, value=2, inside=ref >= 1)
        if k != 0:  # the prediction misses the smallest tumour
            jitter = rng.uniform(-0.15, 0.15, 3) * rad
            _ball(pred, c + jitter, rad * rng.uniform(0.85, 1.15), vox, value=2, inside=pred >= 1)
    fp_centre = centre + np.array([0.1, 0.5, -0.5]) * radii
    _ball(pred, fp_centre, 0.02 * sx, vox, value=2, inside=pred >= 1)
    return ref, pred


def _ball(vol, centre, radius, vox, *, value, inside) -> None:
    lo = np.maximum((centre - radius / vox - 1).astype(int), 0)
    hi = np.minimum((centre + radius / vox + 2).astype(int), vol.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    grids = np.ogrid[box]
    d2 = sum(((g - c) * v) ** 2 for g, c, v in zip(grids, centre, vox, strict=True))
    sel = (d2 <= radius**2) & inside[box]
    vol[box][sel] = value


def _medpy_scores(pred: np.ndarray, ref: np.ndarray, spacing) -> dict:
    from medpy.metric import binary as mb

    out = {}
    for region, p, r in (("liver", pred >= 1, ref >= 1), ("tumour", pred == 2, ref == 2)):
        out[region] = {
            "dice": mb.dc(p, r),
            "rvd": mb.ravd(p, r),
            "assd": mb.assd(p, r, voxelspacing=spacing, connectivity=2),
            "mssd": mb.hd(p, r, voxelspacing=spacing, connectivity=2),
            "asd": mb.asd(p, r, voxelspacing=spacing, connectivity=2),
        }
    return out


def _agree(ours: float, theirs: float, name: str) -> bool:
    if name in ("dice", "rvd"):
        return abs(ours - theirs) <= OVERLAP_TOL
    return math.isclose(ours, theirs, rel_tol=DISTANCE_RTOL, abs_tol=0.0)


def run_benchmark(
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    *,
    seed: int = 0,
    medpy: bool = True,
    repeat: int = 3,
    workdir: str | Path | None = None,
    echo: Callable[[str], None] = print,
) -> dict:
    """Generate, write, read and score one case; return timings and agreement.

    Reading and our scoring are timed `repeat` times and the best time is reported (the
    machine may be shared); medpy runs once (it takes minutes at paper size).
    """
    ref, pred = make_case(shape, seed)
    affine = np.diag([*spacing, 1.0])
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        paths = [Path(tmp) / "segmentation-0.nii.gz", Path(tmp) / "0.nii.gz"]
        for path, data in zip(paths, (ref, pred), strict=True):
            nib.save(nib.Nifti1Image(data, affine), str(path))
        del ref, pred
        reads = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            loaded = [np.asanyarray(nib.load(str(p)).dataobj) for p in paths]
            reads.append(time.perf_counter() - t0)
    t_read = min(reads)
    ref, pred = loaded
    lits_runs, runs = [], []
    for _ in range(repeat):  # interleaved, so a burst of load hits both alike
        t0 = time.perf_counter()
        score_case(pred, ref, spacing, peer_metrics=False)
        lits_runs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ours = score_case(pred, ref, spacing)
        runs.append(time.perf_counter() - t0)
    t_lits, t_ours = min(lits_runs), min(runs)
    liver, tumour = ours.regions["liver"], ours.regions["tumour"]
    echo(
        f"case {shape} spacing {spacing} mm: liver {liver.counts.ref} voxels, "
        f"tumour {tumour.counts.ref} voxels, {ours.lesions.n_ref} reference lesions"
    )
    echo(f"timings: best of {repeat} for reading and ours, one medpy run")
    echo(f"read two .nii.gz : {t_read:8.3f} s")
    echo(f"ours (LiTS set)  : {t_lits:8.3f} s  ({t_lits / t_read:.2f}x the read time)")
    echo(
        f"ours (score set) : {t_ours:8.3f} s  ({t_ours / t_read:.2f}x the read time, "
        f"{t_ours / t_lits:.2f}x the LiTS set; evaluate's default: LiTS set + peer metrics)"
    )
    result: dict = {
        "read_s": t_read,
        "lits_s": t_lits,
        "ours_s": t_ours,
        "shape": shape,
        "ours_runs_s": runs,
    }
    if medpy:
        result.update(_against_medpy(pred, ref, spacing, ours, t_lits, echo))
    return result


def _against_medpy(pred, ref, spacing, ours, t_lits: float, echo: Callable[[str], None]) -> dict:
    """Time medpy's LiTS calls once and compare its values with ours (`ours`: `score_case`)."""
    t0 = time.perf_counter()
    theirs = _medpy_scores(pred, ref, spacing)
    t_medpy = time.perf_counter() - t0
    echo(
        f"medpy dc+assd+hd+asd: {t_medpy:8.3f} s  (our LiTS set is {t_medpy / t_lits:.0f}x faster)"
    )
    agree = True
    for region in ("liver", "tumour"):
        mine = ours.regions[region].values
        for name in ("dice", "rvd", "assd", "mssd"):
            ok = _agree(mine[name], theirs[region][name], name)
            agree &= ok
            echo(
                f"  {region:<6} {name:<4} ours {mine[name]:.10g}  medpy "
                f"{theirs[region][name]:.10g}  {'agree' if ok else 'DISAGREE'}"
            )
    echo("values agree" if agree else "VALUES DISAGREE")
    return {"medpy_s": t_medpy, "agree": agree}


START_ALLOWANCE_S = 0.5  # what a command may spend starting, in the floor


def write_case_set(
    root: Path,
    n_cases: int,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    *,
    seed: int = 0,
    distinct: int = 2,
) -> None:
    """A LiTS layout under root/ref (labels, blank volumes) and predictions under root/pred.

    `distinct` different cases are generated (generation takes seconds per case) and
    repeated to make `n_cases`; every file is written on its own.
    """
    affine = np.diag([*spacing, 1.0])
    (root / "ref").mkdir(parents=True, exist_ok=True)
    (root / "pred").mkdir(parents=True, exist_ok=True)
    pairs = [make_case(shape, seed + k) for k in range(max(1, min(distinct, n_cases)))]
    blank = nib.Nifti1Image(np.zeros(shape, np.int16), affine)
    for k in range(n_cases):
        ref, pred = pairs[k % len(pairs)]
        nib.save(nib.Nifti1Image(ref, affine), str(root / "ref" / f"segmentation-{k}.nii.gz"))
        nib.save(blank, str(root / "ref" / f"volume-{k}.nii.gz"))
        nib.save(nib.Nifti1Image(pred, affine), str(root / "pred" / f"{k}.nii.gz"))


def _time_command(
    args: list[str] | Callable[[int], list[str]], repeat: int
) -> tuple[list[float], list[float]]:
    """Wall and CPU times (user + system, the command and its workers) of
    `python -m e2net_eval ARGS` in fresh processes (this interpreter).

    `args` may be a function of the repetition, e.g. to give each run its own
    output folder (`evaluate` refuses to overwrite a previous run's)."""
    # The same package as this process's, whatever the working directory holds.
    root = str(Path(e2net_eval.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        run_args = args(len(walls)) if callable(args) else args
        done = subprocess.run(
            [sys.executable, "-m", "e2net_eval", *run_args],
            env=env,
            cwd=tempfile.gettempdir(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if done.returncode != 0:
            said = (done.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1]
            raise RuntimeError(
                f"timed command `e2net-eval {' '.join(run_args)}` exited {done.returncode}: {said}"
            )
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def _read_times(paths: list[Path], repeat: int) -> tuple[float, float]:
    """Best wall and CPU time of reading every file of `paths` with nibabel."""
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        for path in paths:
            np.asanyarray(nib.load(str(path)).dataobj)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def run_evaluate_benchmark(
    n_cases: int,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    *,
    jobs: int = 2,
    seed: int = 0,
    repeat: int = 3,
    workdir: str | Path | None = None,
    echo: Callable[[str], None] = print,
) -> dict:
    """Time ``e2net-eval evaluate --jobs J`` on `n_cases` generated cases vs its read floor.

    Best of `repeat` for every figure. Returns the figures and ``ratio`` (command / floor).
    """
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        root = Path(tmp)
        write_case_set(root, n_cases, shape, spacing, seed=seed)
        labels = sorted((root / "ref").glob("segmentation-*.nii.gz"))
        labels += sorted((root / "pred").glob("*.nii.gz"))
        t_read, c_read = _read_times(labels, repeat)

        def args(k: int) -> list[str]:
            out = ["evaluate", str(root / "pred"), str(root / "ref"), "-o", str(root / f"out{k}")]
            return out + ["--jobs", str(jobs), "--no-progress"]

        walls, cpus = _time_command(args, repeat)
        t_cmd, c_cmd = min(walls), min(cpus)
        t_help = min(_time_command(["evaluate", "--help"], repeat)[0])
    floor = t_read / jobs + START_ALLOWANCE_S
    echo(f"evaluate {n_cases} cases {shape} --jobs {jobs} (best of {repeat}, fresh processes):")
    echo(f"{f'read {len(labels)} label files':<25}: {t_read:8.3f} s  (nibabel)")
    echo(
        f"floor                    : {floor:8.3f} s  (read / {jobs} workers + "
        f"{START_ALLOWANCE_S} s start)"
    )
    echo(f"whole evaluate command   : {t_cmd:8.3f} s  ({t_cmd / floor:.2f}x the floor)")
    echo(
        f"CPU time (a loaded machine stretches wall times, not these): reading "
        f"{c_read:.3f} s, the whole command {c_cmd:.3f} s ({c_cmd / c_read:.2f}x)"
    )
    echo(f"evaluate --help          : {t_help:8.3f} s")
    return {
        "read_cpu_s": c_read,
        "command_cpu_s": c_cmd,
        "read_s": t_read,
        "floor_s": floor,
        "command_s": t_cmd,
        "ratio": t_cmd / floor,
        "help_s": t_help,
        "n_cases": n_cases,
        "jobs": jobs,
    }
