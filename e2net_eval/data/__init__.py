"""Read cases (LiTS, Decathlon Task03, 3DIRCADb DICOM) and write the synthetic phantom.

The names below load on first access, so reading a label value (`LIVER`) or a NIfTI
dataset imports neither the phantom writer nor the DICOM reader (pydicom).
"""

from __future__ import annotations

import importlib

from e2net_eval.data.case import BACKGROUND, LABEL_VALUES, LIVER, TUMOUR, Case

_LAZY = {
    "Dataset": "dataset",
    "detect_layout": "dataset",
    "open_dataset": "dataset",
    "find_overlap": "overlap",
    "PhantomSpec": "phantom",
    "write_phantom": "phantom",
    "window_hu": "preprocess",
    "make_split": "split",
}

__all__ = ["BACKGROUND", "LABEL_VALUES", "LIVER", "TUMOUR", "Case", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
