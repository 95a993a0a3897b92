"""Score a folder of predicted label volumes against any reference dataset.

`evaluate(pred_dir, ref_root, out_dir, options)` writes ``per_case.csv`` and
``summary.json``. The reference is any dataset the data layer opens, a folder of reference
labels included (no CT image is read). Prediction files are found by
`predictions.PredictionFinder`. Cases run in worker processes (`EvaluateOptions.jobs`), at
most that many in flight, each worker reading its own case so memory stays bounded.

Importing this module is light (the scoring stack, numpy and the readers load when a case
is scored), so `from e2net_eval.metrics import evaluate` costs nothing until it runs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from e2net_eval.data.spacing import AFFINE_ATOL
from e2net_eval.errors import InputError
from e2net_eval.metrics.columns import csv_columns
from e2net_eval.metrics.predictions import PredictionFinder
from e2net_eval.metrics.registry import (
    DEFAULT_CONNECTIVITY,
    LESION_CONNECTIVITY,
    NSD_TOLERANCE_MM,
    PANOPTIC_IOU,
    PEER_CONNECTIVITY,
)
from e2net_eval.util.atomic import write_text
from e2net_eval.util.children import worker_pool
from e2net_eval.util.faults import fault_point
from e2net_eval.util.jsonio import dump_json
from e2net_eval.util.meta import run_meta
from e2net_eval.util.outdir import result_folder
from e2net_eval.util.textsafe import csv_cell

if TYPE_CHECKING:
    import numpy as np

    from e2net_eval.data.dataset import Dataset
    from e2net_eval.metrics.accumulate import SetAccumulator
    from e2net_eval.metrics.case import ScoredCase

log = logging.getLogger(__name__)

SCORING = (
    "liver label>=1, tumour label==2; surface = mask minus 18-neighbourhood erosion "
    "(assd, rmsd, mssd); lesions 6-connected, LiTS-style merging, IoU > 0.5; docs/metrics.md"
)
PEER_SCORING = (
    "hd95, hd95_pooled, nsd, masd on 6-neighbourhood surfaces; lesion rq, sq, pq, "
    "lesion_dice with lesions matched one to one at IoU > 0.5, no merging"
)
#: The peer metrics' settings, recorded in ``meta`` (and ``meta.scoring_options``).
PEER_SETTINGS = ("peer_surface_connectivity", "nsd_tolerance_mm", "panoptic_iou_threshold")


@dataclass(frozen=True)
class EvaluateOptions:
    """Everything `evaluate` does besides reading PRED and REF.

    Scoring: `connectivity` (surface erosion), `lesion_connectivity`, `peer_metrics` (also
    HD95, pooled HD95, NSD at `nsd_tolerance` mm, MASD and the lesion RQ / SQ / PQ / lesion
    Dice, docs/metrics.md). Input: `allow_missing` (score a case without a prediction as
    empty), `allow_affine_mismatch`, `case_ids` (only these reference cases, each once),
    `pred_pattern` (``'{id}/{id}_seg.nii.gz'``: names the prediction files when the
    built-in names do not, `predictions`). Run and output: `jobs` (worker processes),
    `progress`, `overwrite`, `protocol` and `extra_meta` (merged into ``summary["meta"]``).
    """

    jobs: int = 1
    allow_missing: bool = False
    allow_affine_mismatch: bool = False
    connectivity: int = DEFAULT_CONNECTIVITY
    lesion_connectivity: int = LESION_CONNECTIVITY
    peer_metrics: bool = True
    nsd_tolerance: float = NSD_TOLERANCE_MM
    case_ids: Sequence[str] | None = None
    protocol: str | None = None
    pred_pattern: str | None = None
    progress: bool = True
    overwrite: bool = False
    extra_meta: dict | None = None

    def __post_init__(self) -> None:
        tol = self.nsd_tolerance
        if not (math.isfinite(tol) and tol >= 0):
            raise InputError(f"NSD tolerance must be a finite number of mm >= 0, not {tol}")
        object.__setattr__(self, "nsd_tolerance", float(tol))

    def scoring(self) -> dict:
        """Every option that changes a number (``meta.scoring_options``): `compare` refuses
        to put side by side evaluations that differ in any option both have (an option only
        one has belongs to metrics only that one computed). A new scoring option belongs
        here."""
        out: dict = {
            "rules": SCORING,
            "surface_connectivity": self.connectivity,
            "lesion_connectivity": self.lesion_connectivity,
        }
        if self.peer_metrics:  # only then do these rules and settings make a number
            out.update(
                peer_rules=PEER_SCORING,
                peer_surface_connectivity=PEER_CONNECTIVITY,
                nsd_tolerance_mm=self.nsd_tolerance,
                panoptic_iou_threshold=PANOPTIC_IOU,
            )
        return out


def read_prediction(
    path: Path, case_id: str, shape: tuple[int, ...], affine: np.ndarray, options: EvaluateOptions
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


_DATASETS: dict[str, Dataset] = {}


def _dataset(ref_root: str) -> Dataset:
    from e2net_eval.data import open_dataset

    if ref_root not in _DATASETS:
        _DATASETS[ref_root] = open_dataset(ref_root)
    return _DATASETS[ref_root]


def reference_digest(ref: np.ndarray, spacing: Sequence[float]) -> str:
    """SHA-256 of a reference label volume as scored: its shape, voxel size (mm, to 1e-6)
    and labels. The reference's identity by content (``metric_per_case[].reference_sha256``):
    `regress` compares it, never the reference's path, which differs between machines."""
    import numpy as np

    h = hashlib.sha256()
    h.update(
        repr((tuple(int(n) for n in ref.shape), [round(float(s), 6) for s in spacing])).encode()
    )
    h.update(np.ascontiguousarray(ref, dtype=np.uint8).tobytes())
    return h.hexdigest()


def score_file(
    pred_path: str | None, ref_root: str, case_id: str, options: EvaluateOptions
) -> ScoredCase:
    """Load and score one case. `pred_path` None: no prediction (scored as empty when
    `options.allow_missing`). Only the reference label is read, never the CT image."""
    import numpy as np

    from e2net_eval.metrics.case import ScoredCase, score_case

    fault_point("evaluate.case")
    case = _dataset(ref_root).load(case_id, image=False, label=True)
    if case.label is None:
        raise InputError("reference has no label volume", case=case_id, path=ref_root)
    ref = np.asarray(case.label)
    if pred_path is None:
        if not options.allow_missing:
            raise InputError(
                "no prediction file; pass --allow-missing to score it as empty",
                case=case_id,
                path=ref_root,
            )
        pred = np.zeros_like(ref, dtype=np.uint8)
    else:
        pred = read_prediction(
            Path(pred_path), case_id, ref.shape, np.asarray(case.affine), options
        )
    scores = score_case(
        pred,
        ref,
        case.spacing,
        connectivity=options.connectivity,
        lesion_connectivity=options.lesion_connectivity,
        peer_metrics=options.peer_metrics,
        nsd_tolerance=options.nsd_tolerance,
    )
    return ScoredCase(case_id, scores, pred_path is None, reference_digest(ref, case.spacing))


def _run(
    paths: dict[str, str | None], ref_root: str, options: EvaluateOptions
) -> Iterator[ScoredCase]:
    """Score cases (case id -> prediction file), serially or with at most `options.jobs`
    cases in flight in worker processes, which die with this process however it ends
    (`util.children.worker_pool`)."""
    jobs = options.jobs
    if jobs <= 1:
        for case_id, path in paths.items():
            yield score_file(path, ref_root, case_id, options)
        return
    # The scoring stack loads here, once, before the workers start: forked workers share it
    # instead of each importing it for its first case.
    import e2net_eval.data.nifti  # noqa: F401
    import e2net_eval.metrics.case  # noqa: F401

    todo = list(paths)
    with worker_pool(jobs) as pool:
        running: set[Future] = set()
        while todo or running:
            while todo and len(running) < jobs:
                cid = todo.pop(0)
                running.add(pool.submit(score_file, paths[cid], ref_root, cid, options))
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()


def _selected(all_ids: list[str], requested: Sequence[str] | None, ref_root) -> list[str]:
    """The reference cases to score: all, or the requested ones (each once)."""
    if requested is None:
        case_ids = all_ids
    else:
        given = [str(c) for c in requested]
        case_ids = list(dict.fromkeys(given))  # `--case 3 --case 3` scores case 3 once
        if len(case_ids) < len(given):
            log.warning("%d repeated case id(s) ignored", len(given) - len(case_ids))
        unknown = sorted(set(case_ids) - set(all_ids))
        if unknown:
            raise InputError(f"cases not in the reference: {', '.join(unknown)}", path=ref_root)
    if not case_ids:
        raise InputError("the reference holds no cases", path=ref_root)
    return case_ids


def _prediction_paths(
    finder: PredictionFinder, all_ids: list[str], case_ids: list[str], allow_missing: bool
) -> dict[str, str | None]:
    """Case id -> its prediction file (None: none), checked before hours of scoring: every
    prediction exists (or is allowed missing) and is unambiguous."""
    finder.claim(all_ids)
    found = {cid: finder.find(cid) for cid in case_ids}
    missing_ids = [cid for cid, path in found.items() if path is None]
    if missing_ids and not allow_missing:
        shown = ", ".join(missing_ids[:10]) + (" ..." if len(missing_ids) > 10 else "")
        raise InputError(
            f"no prediction file for {len(missing_ids)} case(s): {shown} "
            f"({finder.looked_for()}; --pred-pattern names other layouts); "
            "pass --allow-missing to score them as empty",
            case=missing_ids[0],
            path=finder.pred_dir,
        )
    return {cid: None if p is None else str(p) for cid, p in found.items()}


def _accumulate(
    paths: dict[str, str | None], ref_root: str, options: EvaluateOptions
) -> SetAccumulator:
    """Score every case (with a progress bar) and add them in reference order, whatever
    order the workers finished in."""
    from tqdm import tqdm

    from e2net_eval.metrics.accumulate import SetAccumulator

    done: dict[str, ScoredCase] = {}
    with tqdm(total=len(paths), desc="evaluate", unit="case", disable=not options.progress) as bar:
        for case in _run(paths, ref_root, options):
            done[case.case_id] = case
            bar.update(1)
    acc = SetAccumulator(peer=options.peer_metrics)
    for case_id in paths:
        if done[case_id].missing:
            log.warning("case %s: no prediction, scored as empty", case_id)
        acc.add(done[case_id])
    return acc


def _meta(options: EvaluateOptions, dataset: Dataset, pred_dir: Path, ref_root) -> dict:
    """``summary["meta"]``: the inputs, the scoring settings (from `options.scoring()`, also
    kept whole as ``scoring_options``), the tolerances, then `options.extra_meta`."""
    scoring = options.scoring()
    return run_meta(
        reference_root=str(Path(ref_root).resolve()),
        reference_layout=getattr(dataset, "layout", None),
        reference_images=bool(dataset.has_images),
        prediction_dir=str(pred_dir.resolve()),
        prediction_pattern=options.pred_pattern,
        protocol=options.protocol or "unspecified",
        scoring="; ".join(r for r in (scoring["rules"], scoring.get("peer_rules")) if r),
        surface_connectivity=scoring["surface_connectivity"],
        lesion_connectivity=scoring["lesion_connectivity"],
        peer_metrics=options.peer_metrics,
        **{k: scoring[k] for k in PEER_SETTINGS if k in scoring},
        scoring_options=scoring,
        allow_missing=options.allow_missing,
        allow_affine_mismatch=options.allow_affine_mismatch,
        **(options.extra_meta or {}),
    )


def evaluate(
    pred_dir: str | Path,
    ref_root: str | Path,
    out_dir: str | Path,
    options: EvaluateOptions | None = None,
    **changes: Any,
) -> dict:
    """Score every reference case; write OUT/per_case.csv and OUT/summary.json; return the
    summary. `changes` set single `EvaluateOptions` fields by name:
    ``evaluate(p, r, o, jobs=2)`` is ``evaluate(p, r, o, EvaluateOptions(jobs=2))``.

    OUT is a result folder (`util.outdir`): checked (writable, not an input, not holding
    one; a non-empty OUT only with `overwrite` and only if e2net-eval wrote it) before the
    first case is scored, locked while scoring, and the two files appear together.
    """
    from e2net_eval.data import open_dataset

    options = replace(options or EvaluateOptions(), **changes)
    pred_dir, out_dir = Path(pred_dir), Path(out_dir)
    if not pred_dir.is_dir():
        raise InputError("prediction folder does not exist", path=pred_dir)
    finder = PredictionFinder(pred_dir, options.pred_pattern)
    dataset = _DATASETS[str(ref_root)] = open_dataset(ref_root)  # fresh view of the disk
    all_ids = list(dataset.case_ids())
    case_ids = _selected(all_ids, options.case_ids, ref_root)
    paths = _prediction_paths(finder, all_ids, case_ids, options.allow_missing)
    with result_folder(
        out_dir, kind="evaluate", inputs=[pred_dir, ref_root], overwrite=options.overwrite
    ) as tmp:
        acc = _accumulate(paths, str(ref_root), options)
        unmatched = finder.unmatched(all_ids)
        if unmatched:
            log.warning(
                "%d prediction file(s) match no reference case: %s", len(unmatched), unmatched[:5]
            )
        summary = {
            "meta": _meta(options, dataset, pred_dir, ref_root),
            **acc.summary(),
            "unmatched_prediction_files": unmatched,
        }
        write_text(tmp / "per_case.csv", rows_to_csv(acc.rows, peer=options.peer_metrics))
        dump_json(tmp / "summary.json", summary, count_key="n_nonfinite")
    return summary


def _cell(value: object) -> object:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    return csv_cell(value)  # a case id is a name from someone's files: no formula


def rows_to_csv(rows: list[dict], peer: bool = True) -> str:
    """CSV text of per-case rows; undefined values are empty cells, a text that a
    spreadsheet would run as a formula is guarded (`util.textsafe.csv_cell`; the readers of
    `e2net_eval.scores` undo it) (`peer`: with the peer metrics' columns)."""
    columns = csv_columns(peer)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k, "")) for k in columns})
    return buf.getvalue()
