"""Find which LiTS cases are 3DIRCADb patients, from the data alone.

Candidates by header shape, a high-passed fingerprint correlated over the axis flips, then
greedy one-to-one assignment (``FP_SLICES``, ``FP_SIZE``, `threshold`): see docs/data.md,
'Overlap'.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from e2net_eval.data.dataset import Dataset, natural_key
from e2net_eval.util.imports import import_nibabel

nib = import_nibabel()

log = logging.getLogger(__name__)
FP_SLICES, FP_SIZE = 8, 32
HU_CLIP = (-200.0, 400.0)
DEFAULT_THRESHOLD = 0.9


def _canonical_shape(shape: tuple[int, ...], affine: np.ndarray) -> tuple[int, int, int]:
    ornt = nib.orientations.io_orientation(affine)
    out = [0, 0, 0]
    for axis, (target, _flip) in enumerate(ornt):
        out[int(target)] = int(shape[axis])
    return tuple(out)


def _positions(n: int, m: int) -> np.ndarray:
    """`m` sample indices in range(n), symmetric: flipping the axis reverses them exactly."""
    if n <= m:
        return np.arange(n)
    half = [int((i + 0.5) * n / m) for i in range(m // 2)]
    mid = [n // 2] if m % 2 else []
    return np.array(half + mid + [n - 1 - i for i in reversed(half)])


def fingerprint(image: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """(FP_SIZE, FP_SIZE, FP_SLICES) float32 summary of a volume in RAS axis order."""
    ornt = nib.orientations.io_orientation(affine)
    vol = nib.orientations.apply_orientation(image, ornt)  # a view: flips and transposes
    nx, ny, nz = vol.shape
    zs, xs, ys = _positions(nz, FP_SLICES), _positions(nx, FP_SIZE), _positions(ny, FP_SIZE)
    step = max(nx / FP_SIZE, ny / FP_SIZE, 1.0)
    out = np.empty((len(xs), len(ys), len(zs)), dtype=np.float32)
    for k, z in enumerate(zs):
        sl = np.clip(np.asarray(vol[:, :, z], dtype=np.float32), *HU_CLIP)
        # High-pass: the body outline is alike in every patient; the inside is not.
        sl = sl - ndimage.gaussian_filter(sl, 2 * step, mode="nearest")
        if step > 1.0:
            sl = ndimage.gaussian_filter(sl, step / 4, mode="nearest")
        out[:, :, k] = sl[np.ix_(xs, ys)]
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    den = float(np.sqrt((a @ a) * (b @ b)))
    return float(a @ b) / den if den > 0 else 0.0


def match_score(
    fp_a: np.ndarray, fp_b: np.ndarray, *, transpose: bool | None = None
) -> tuple[float, str]:
    """Best correlation of two fingerprints over axis flips (and transposes); with its label."""
    best, how = -1.0, ""
    options = (False, True) if transpose is None else (transpose,)
    for tr in options:
        b = fp_b.transpose(1, 0, 2) if tr else fp_b
        if b.shape != fp_a.shape:
            continue
        for flips in itertools.product((False, True), repeat=3):
            axes = tuple(i for i, f in enumerate(flips) if f)
            s = _corr(fp_a, np.flip(b, axes) if axes else b)
            if s > best:
                name = "".join("xyz"[i] for i in axes)
                best, how = s, ("transpose " if tr else "") + (f"flip {name}" if name else "as is")
    return best, how


def find_overlap(
    lits: Dataset, ircadb: Dataset, *, threshold: float = DEFAULT_THRESHOLD, progress: bool = False
) -> list[dict]:
    """Match cases of `lits` to patients of `ircadb`; returns one dict per match.

    Each match: ``{"lits": id, "ircadb": id, "score": correlation, "orientation": how the
    LiTS copy relates to the 3DIRCADb volume in RAS order, "candidates": n compared}``.
    """
    heads = {}
    for ds in (lits, ircadb):
        for cid in ds.case_ids():
            shape, affine = ds.header(cid)
            heads[ds.layout, cid] = _canonical_shape(shape, affine)
    fps: dict[tuple[str, str], np.ndarray] = {}

    def fp(ds: Dataset, cid: str) -> np.ndarray:
        if (ds.layout, cid) not in fps:
            case = ds.load(cid, label=False)
            fps[ds.layout, cid] = fingerprint(case.image, case.affine)
        return fps[ds.layout, cid]

    scored = []
    for icid in tqdm(ircadb.case_ids(), desc="overlap", disable=None if progress else True):
        ish = heads[ircadb.layout, icid]
        cands = []
        for lcid in lits.case_ids():
            lsh = heads[lits.layout, lcid]
            if lsh[2] != ish[2] or sorted(lsh[:2]) != sorted(ish[:2]):
                continue
            same, swapped = lsh[:2] == ish[:2], lsh[:2] == ish[1::-1]
            transpose = None if same and swapped else swapped
            cands.append((lcid, transpose))
        for lcid, transpose in cands:
            score, how = match_score(fp(ircadb, icid), fp(lits, lcid), transpose=transpose)
            log.debug("overlap %s ~ %s: %.4f (%s)", lcid, icid, score, how)
            scored.append((score, lcid, icid, how, len(cands)))
    matches, used_l, used_i = [], set(), set()
    for score, lcid, icid, how, n in sorted(scored, key=lambda t: -t[0]):
        if score < threshold or lcid in used_l or icid in used_i:
            continue
        used_l.add(lcid)
        used_i.add(icid)
        matches.append(
            {
                "lits": lcid,
                "ircadb": icid,
                "score": round(score, 6),
                "orientation": how,
                "candidates": n,
            }
        )
    return sorted(matches, key=lambda m: natural_key(m["lits"]))
