"""Read cases (LiTS, Decathlon Task03, 3DIRCADb DICOM) and write the synthetic phantom."""

from __future__ import annotations

from e2net_eval.data.case import BACKGROUND, LABEL_VALUES, LIVER, TUMOUR, Case

__all__ = ["BACKGROUND", "LABEL_VALUES", "LIVER", "TUMOUR", "Case"]
