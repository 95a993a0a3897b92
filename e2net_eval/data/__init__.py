"""Read cases (LiTS, Decathlon Task03, 3DIRCADb DICOM) and write the synthetic phantom."""

from __future__ import annotations

from e2net_eval.data.case import BACKGROUND, LABEL_VALUES, LIVER, TUMOUR, Case
from e2net_eval.data.dataset import Dataset, detect_layout, open_dataset
from e2net_eval.data.overlap import find_overlap
from e2net_eval.data.phantom import write_phantom
from e2net_eval.data.preprocess import window_hu
from e2net_eval.data.split import make_split

__all__ = [
    "BACKGROUND",
    "LABEL_VALUES",
    "LIVER",
    "TUMOUR",
    "Case",
    "Dataset",
    "detect_layout",
    "find_overlap",
    "make_split",
    "open_dataset",
    "window_hu",
    "write_phantom",
]
