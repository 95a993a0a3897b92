"""Score a folder of predicted label volumes against any reference dataset.

`evaluate(pred_dir, ref_root, out_dir)` writes ``per_case.csv`` and ``summary.json``.
Prediction file for reference case ``<id>`` (first found, ``.nii.gz`` or ``.nii``):
``<id>``, ``segmentation-<id>``, ``test-segmentation-<id>``, ``liver_<id>``; two matching
files for one case are an error. Cases run in worker processes (`jobs`), at most `jobs`
in flight, each worker reading its own case so memory stays bounded.

Importing this module is light (the scoring stack, numpy and the readers load when a case
is scored), so `from e2net_eval.metrics import evaluate` costs nothing until it runs.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from e2net_eval.errors import InputError
from e2net_eval.metrics.registry import (
    DEFAULT_CONNECTIVITY,
    LESION_CONNECTIVITY,
    NSD_TOLERANCE_MM,
    PANOPTIC_IOU,
    PEER_CONNECTIVITY,
)
from e2net_eval.util.atomic import write_text
from e2net_eval.util.jsonio import dump_json
from e2net_eval.util.meta import run_meta

if TYPE_CHECKING:
    import numpy as np

    from e2net_eval.metrics.case import CaseScores

log = logging.getLogger(__name__)

PREFIXES = ("", "segmentation-", "test-segmentation-", "liver_")
SUFFIXES = (".nii.gz", ".nii")
AFFINE_ATOL = 1e-3  # mm; headers written by different tools round differently
SCORING = (
    "liver label>=1, tumour label==2; surface = mask minus 18-neighbourhood erosion "
    "(assd, rmsd, mssd); lesions 6-connected, LiTS-style merging, IoU > 0.5; docs/metrics.md"
)
PEER_SCORING = (
    "hd95, hd95_pooled, nsd, masd on 6-neighbourhood surfaces; lesion rq, sq, pq, "
    "lesion_dice with lesions matched one to one at IoU > 0.5, no merging"
)


@dataclass(frozen=True)
class Options:
    """How a case is scored and which mismatches are tolerated."""

    allow_missing: bool = False
    allow_affine_mismatch: bool = False
    connectivity: int = DEFAULT_CONNECTIVITY
    lesion_connectivity: int = LESION_CONNECTIVITY
    peer_metrics: bool = True
    nsd_tolerance: float = NSD_TOLERANCE_MM


def find_prediction(pred_dir: Path, case_id: str) -> Path | None:
    """The prediction file of `case_id` in `pred_dir` by the naming rule, or None."""
    found = [
        pred_dir / f"{prefix}{case_id}{suffix}"
        for prefix in PREFIXES
        for suffix in SUFFIXES
        if (pred_dir / f"{prefix}{case_id}{suffix}").is_file()
    ]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise InputError(
            f"several predictions match this case: {names}", case=case_id, path=pred_dir
        )
    return found[0] if found else None


def read_prediction(
    path: Path, case_id: str, shape: tuple[int, ...], affine: np.ndarray, options: Options
) -> np.ndarray:
    """Read a predicted label volume and check it against the reference grid -> uint8.

    Reading and the label-value check (0, 1, 2 only; integral floats accepted) are the
    data layer's (`e2net_eval.data.nifti.read_label`), so a truncated ``.nii.gz`` is an
    error too.
    """
    import numpy as np

    from e2net_eval.data.nifti import read_label

    data, pred_affine, _ = read_label(path, case_id)
    if tuple(data.shape) != tuple(shape):
        raise InputError(
            f"prediction shape {tuple(data.shape)} differs from the reference {tuple(shape)}",
            case=case_id,
            path=path,
        )
    if not options.allow_affine_mismatch and not np.allclose(
        pred_affine, affine, rtol=0, atol=AFFINE_ATOL
    ):
        raise InputError(
            "prediction affine differs from the reference affine "
            f"(max difference {np.abs(pred_affine - affine).max():.4g}); "
            "resample onto the reference grid or pass --allow-affine-mismatch",
            case=case_id,
            path=path,
        )
    return data


_DATASETS: dict[str, object] = {}


def _dataset(ref_root: str):
    from e2net_eval.data import open_dataset

    if ref_root not in _DATASETS:
        _DATASETS[ref_root] = open_dataset(ref_root)
    return _DATASETS[ref_root]


def score_file(
    pred_dir: str, ref_root: str, case_id: str, options: Options
) -> tuple[str, CaseScores, bool]:
    """Load and score one case -> (case id, scores, scored as a missing prediction)."""
    import numpy as np

    from e2net_eval.metrics.case import score_case

    case = _dataset(ref_root).load(case_id, image=False, label=True)
    if case.label is None:
        raise InputError("reference has no label volume", case=case_id, path=ref_root)
    ref = np.asarray(case.label)
    path = find_prediction(Path(pred_dir), case_id)
    missing = path is None
    if missing:
        if not options.allow_missing:
            raise InputError(
                "no prediction file (looked for <id>, segmentation-<id>, "
                "test-segmentation-<id>, liver_<id> with .nii/.nii.gz); "
                "pass --allow-missing to score it as empty",
                case=case_id,
                path=pred_dir,
            )
        pred = np.zeros_like(ref, dtype=np.uint8)
    else:
        pred = read_prediction(path, case_id, ref.shape, np.asarray(case.affine), options)
    scores = score_case(
        pred,
        ref,
        case.spacing,
        connectivity=options.connectivity,
        lesion_connectivity=options.lesion_connectivity,
        peer_metrics=options.peer_metrics,
        nsd_tolerance=options.nsd_tolerance,
    )
    return case_id, scores, missing


def _run(
    pred_dir: str, ref_root: str, case_ids: Sequence[str], options: Options, jobs: int
) -> Iterator[tuple[str, CaseScores, bool]]:
    """Score cases, serially or with at most `jobs` cases in flight in worker processes."""
    if jobs <= 1:
        for case_id in case_ids:
            yield score_file(pred_dir, ref_root, case_id, options)
        return
    # The scoring stack loads here, once, before the workers start: forked workers share it
    # instead of each importing it for its first case.
    import e2net_eval.data.nifti  # noqa: F401
    import e2net_eval.metrics.case  # noqa: F401

    todo = list(case_ids)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        running: set[Future] = set()
        while todo or running:
            while todo and len(running) < jobs:
                running.add(pool.submit(score_file, pred_dir, ref_root, todo.pop(0), options))
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()


def evaluate(
    pred_dir: str | Path,
    ref_root: str | Path,
    out_dir: str | Path,
    *,
    jobs: int = 1,
    allow_missing: bool = False,
    allow_affine_mismatch: bool = False,
    connectivity: int = DEFAULT_CONNECTIVITY,
    lesion_connectivity: int = LESION_CONNECTIVITY,
    case_ids: Sequence[str] | None = None,
    protocol: str | None = None,
    progress: bool = True,
    peer_metrics: bool = True,
    nsd_tolerance: float = NSD_TOLERANCE_MM,
) -> dict:
    """Score every reference case; write OUT/per_case.csv and OUT/summary.json; return the summary.

    `peer_metrics`: also HD95, pooled HD95, NSD at `nsd_tolerance` mm, MASD and the lesion
    RQ / SQ / PQ / lesion Dice (docs/metrics.md).
    """
    from tqdm import tqdm

    from e2net_eval.data import open_dataset
    from e2net_eval.metrics.accumulate import SetAccumulator

    pred_dir, out_dir = Path(pred_dir), Path(out_dir)
    if not (math.isfinite(nsd_tolerance) and nsd_tolerance >= 0):
        raise InputError(f"NSD tolerance must be a finite number of mm >= 0, not {nsd_tolerance}")
    if not pred_dir.is_dir():
        raise InputError("prediction folder does not exist", path=pred_dir)
    dataset = _DATASETS[str(ref_root)] = open_dataset(ref_root)  # fresh view of the disk
    all_ids = list(dataset.case_ids())
    if case_ids is None:
        case_ids = all_ids
    else:
        unknown = sorted(set(case_ids) - set(all_ids))
        if unknown:
            raise InputError(f"cases not in the reference: {', '.join(unknown)}", path=ref_root)
    if not case_ids:
        raise InputError("the reference holds no cases", path=ref_root)
    # Fail before hours of scoring: every prediction must exist (or be allowed missing)
    # and be unambiguous.
    missing_ids = [cid for cid in case_ids if find_prediction(pred_dir, cid) is None]
    if missing_ids and not allow_missing:
        shown = ", ".join(missing_ids[:10]) + (" ..." if len(missing_ids) > 10 else "")
        raise InputError(
            f"no prediction file for {len(missing_ids)} case(s): {shown} (looked for <id>, "
            "segmentation-<id>, test-segmentation-<id>, liver_<id> with .nii/.nii.gz); "
            "pass --allow-missing to score them as empty",
            case=missing_ids[0],
            path=pred_dir,
        )
    options = Options(
        allow_missing,
        allow_affine_mismatch,
        connectivity,
        lesion_connectivity,
        peer_metrics,
        float(nsd_tolerance),
    )
    results: dict[str, tuple[CaseScores, bool]] = {}
    bar = tqdm(total=len(case_ids), desc="evaluate", unit="case", disable=not progress)
    with bar:
        for case_id, scores, missing in _run(str(pred_dir), str(ref_root), case_ids, options, jobs):
            results[case_id] = (scores, missing)
            bar.update(1)
    acc = SetAccumulator(peer=peer_metrics)
    for case_id in case_ids:  # reference order, whatever order the workers finished in
        scores, missing = results[case_id]
        if missing:
            log.warning("case %s: no prediction, scored as empty", case_id)
        acc.add(case_id, scores, missing_prediction=missing)
    unmatched = unmatched_predictions(pred_dir, all_ids)
    if unmatched:
        log.warning(
            "%d prediction file(s) match no reference case: %s", len(unmatched), unmatched[:5]
        )
    summary = {
        "meta": run_meta(
            reference_root=str(Path(ref_root).resolve()),
            reference_layout=getattr(dataset, "layout", None),
            prediction_dir=str(pred_dir.resolve()),
            protocol=protocol or "unspecified",
            scoring=SCORING + ("; " + PEER_SCORING if peer_metrics else ""),
            surface_connectivity=connectivity,
            lesion_connectivity=lesion_connectivity,
            peer_metrics=peer_metrics,
            **(
                {
                    "peer_surface_connectivity": PEER_CONNECTIVITY,
                    "nsd_tolerance_mm": float(nsd_tolerance),
                    "panoptic_iou_threshold": PANOPTIC_IOU,
                }
                if peer_metrics
                else {}
            ),
            allow_missing=allow_missing,
            allow_affine_mismatch=allow_affine_mismatch,
        ),
        **acc.summary(),
        "unmatched_prediction_files": unmatched,
    }
    write_text(out_dir / "per_case.csv", rows_to_csv(acc.rows, peer=peer_metrics))
    dump_json(out_dir / "summary.json", summary, count_key="n_nonfinite")
    return summary


def unmatched_predictions(pred_dir: Path, case_ids: Sequence[str]) -> list[str]:
    """Names of NIfTI files in `pred_dir` that the naming rule gives to no reference case."""
    matched = {p.name for cid in case_ids if (p := find_prediction(pred_dir, cid)) is not None}
    files = [p.name for p in pred_dir.iterdir() if p.name.endswith(SUFFIXES) and p.is_file()]
    return sorted(name for name in files if name not in matched)


def _cell(value: object) -> object:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    return value


def rows_to_csv(rows: list[dict], peer: bool = True) -> str:
    """CSV text of per-case rows; undefined values are empty cells (`peer`: with the peer
    metrics' columns)."""
    from e2net_eval.metrics.accumulate import csv_columns

    columns = csv_columns(peer)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k, "")) for k in columns})
    return buf.getvalue()
