"""One-time slice cache: windowed axial slices and labels as memory-mapped ``.npy`` files.

Each case is read once, windowed (HU [-100, 240] -> [-1, 1], the data layer's `window_hu`),
turned to the canonical orientation and stored under ``RUN/cache/<dataset key>/<case id>/``:
``image.npy`` ``(Z, X, Y)`` float16, ``label.npy`` uint8 0/1/2, ``boxes.npy`` ``(Z, 4)`` int32
liver box per slice (-1 without liver), ``tumour.npy`` ``(Z,)`` tumour pixels per slice, and
``meta.json`` last (the directory appears atomically). The key is the layout plus a hash of
the resolved root; if the data under a root changes, delete ``RUN/cache`` (docs/training.md,
"Slice cache").
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from e2net_eval.data import open_dataset, window_hu
from e2net_eval.errors import InputError
from e2net_eval.runtime.geometry import slice_boxes
from e2net_eval.runtime.orientation import Orientation
from e2net_eval.util.atomic import atomic_dir
from e2net_eval.util.jsonio import dump_json, load_json

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: tumour.npy


@dataclass
class CachedCase:
    """One case's cached slices, memory-mapped read-only."""

    case_id: str
    image: np.ndarray  # (Z, X, Y) float16, windowed
    label: np.ndarray  # (Z, X, Y) uint8
    boxes: np.ndarray  # (Z, 4) int32, -1 where the slice has no liver
    tumour: np.ndarray  # (Z,) int64 tumour pixels per slice
    folder: Path | None = None

    def __reduce__(self):
        # loader processes started by spawn/forkserver re-map the files instead of copying
        if self.folder is None:
            return super().__reduce__()
        return _open, (self.folder, self.case_id)

    @property
    def n_slices(self) -> int:
        return int(self.image.shape[0])

    def liver_slices(self) -> np.ndarray:
        """Indices of the slices that contain liver (label >= 1)."""
        return np.flatnonzero(self.boxes[:, 0] >= 0)

    def other_slices(self) -> np.ndarray:
        """Indices of the slices without liver."""
        return np.flatnonzero(self.boxes[:, 0] < 0)

    def tumour_slices(self) -> np.ndarray:
        """Indices of the slices that contain tumour (label == 2)."""
        return np.flatnonzero(self.tumour > 0)


def dataset_key(layout: str, root: str | Path) -> str:
    """Cache folder name of a dataset: layout plus a short hash of its resolved root."""
    digest = hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:12]
    return f"{layout}-{digest}"


def _open(case_dir: Path, case_id: str) -> CachedCase:
    return CachedCase(
        case_id=case_id,
        image=np.load(case_dir / "image.npy", mmap_mode="r"),
        label=np.load(case_dir / "label.npy", mmap_mode="r"),
        boxes=np.load(case_dir / "boxes.npy"),
        tumour=np.load(case_dir / "tumour.npy"),
        folder=case_dir,
    )


def _is_complete(case_dir: Path) -> bool:
    try:  # a missing meta.json (an unfinished case) is an OSError too
        return load_json(case_dir / "meta.json").get("version") == CACHE_VERSION
    except (OSError, ValueError):
        return False


def _build(dataset, case_id: str, case_dir: Path) -> None:
    case = dataset.load(case_id)
    if case.image is None or case.label is None:
        raise InputError("training needs an image and a label", case=case_id, path=case.image_path)
    if case.image.shape != case.label.shape:
        raise InputError(
            f"image shape {case.image.shape} != label shape {case.label.shape}",
            case=case_id,
            path=case.label_path,
        )
    if case.image.ndim != 3:
        raise InputError(f"expected a 3D volume, got shape {case.image.shape}", case=case_id)
    orient = Orientation.from_affine(case.affine)
    image = orient.slices(window_hu(case.image)).astype(np.float16)
    label = orient.slices(np.asarray(case.label, dtype=np.uint8))
    if label.max(initial=0) > 2:
        raise InputError("labels must be 0, 1 or 2", case=case_id, path=case.label_path)
    boxes = slice_boxes(torch.from_numpy(label >= 1))
    boxes = np.array([b or (-1,) * 4 for b in boxes], dtype=np.int32).reshape(-1, 4)
    tumour = (label == 2).sum(axis=(1, 2), dtype=np.int64)
    with atomic_dir(case_dir) as tmp:
        np.save(tmp / "image.npy", image)
        np.save(tmp / "label.npy", label)
        np.save(tmp / "boxes.npy", boxes)
        np.save(tmp / "tumour.npy", tumour)
        dump_json(
            tmp / "meta.json",
            {
                "version": CACHE_VERSION,
                "case_id": case_id,
                "stored_shape": list(case.image.shape),
                "slices_shape": list(image.shape),
                "slice_axis": orient.slice_axis,
                "n_liver_slices": int((boxes[:, 0] >= 0).sum()),
                "n_tumour_slices": int((tumour > 0).sum()),
                "image_path": case.image_path,
                "label_path": case.label_path,
            },
        )


class SliceCache:
    """The cached slices of one dataset root under a cache directory (``RUN/cache``)."""

    def __init__(self, cache_dir: str | Path, data_root: str | Path):
        self.data_root = Path(data_root)
        self.dataset = open_dataset(self.data_root)
        self.dir = Path(cache_dir) / dataset_key(self.dataset.layout, self.data_root)

    def case_ids(self) -> list[str]:
        return list(self.dataset.case_ids())

    def build(self, case_ids: list[str], *, progress: bool = True) -> None:
        """Decode and store every case of `case_ids` not cached yet (one case in memory)."""
        missing = [c for c in case_ids if not _is_complete(self.dir / c)]
        if not missing:
            return
        log.info("caching %d of %d cases under %s", len(missing), len(case_ids), self.dir)
        for case_id in tqdm(missing, desc="cache", unit="case", disable=not progress):
            _build(self.dataset, case_id, self.dir / case_id)

    def open(self, case_ids: list[str], *, progress: bool = True) -> list[CachedCase]:
        """Build what is missing, then memory-map every case of `case_ids` (in that order)."""
        known = set(self.case_ids())
        unknown = [c for c in case_ids if c not in known]
        if unknown:
            raise InputError(
                f"{len(unknown)} case(s) not in the dataset, e.g. {unknown[0]!r}",
                path=self.data_root,
            )
        self.build(case_ids, progress=progress)
        return [_open(self.dir / c, c) for c in case_ids]
