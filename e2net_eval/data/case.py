"""The one value type every stage passes around: a CT case with its labels and geometry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing the label values stays light (no numpy)
    import numpy as np

BACKGROUND, LIVER, TUMOUR = 0, 1, 2
LABEL_VALUES = (BACKGROUND, LIVER, TUMOUR)


@dataclass
class Case:
    """One CT volume and its reference labels, in array axis order as stored on disk.

    - ``image``: Hounsfield units, ``float32`` or ``int16``, shape ``(X, Y, Z)`` for NIfTI
      (slices along the last axis), or None when only labels were read.
    - ``label``: ``uint8`` with 0 background, 1 liver, 2 tumour, same shape, or None.
    - ``spacing``: voxel size in mm, one value per array axis.
    - ``affine``: 4x4 voxel-to-world (RAS+ for NIfTI) matrix; the truth about orientation.
    """

    case_id: str
    image: np.ndarray | None
    label: np.ndarray | None
    spacing: tuple[float, float, float]
    affine: np.ndarray
    layout: str = ""
    image_path: Path | None = None
    label_path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        arr = self.image if self.image is not None else self.label
        return tuple(arr.shape) if arr is not None else ()
