"""What every reported metric means: direction, unit, description (reports read this)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """How to read one metric: is higher better, its unit, and a one-line definition."""

    higher_is_better: bool
    unit: str
    description: str


METRICS: dict[str, MetricInfo] = {
    "dice": MetricInfo(True, "", "Dice 2|P∩R|/(|P|+|R|) per case; 1 if both empty, 0 if one is"),
    "dice_per_case": MetricInfo(True, "", "mean over cases of the per-case Dice"),
    "dice_global": MetricInfo(True, "", "global Dice 2ΣI/ΣS, I and S summed over the set"),
    "voe": MetricInfo(False, "", "volumetric overlap error 1 - |P∩R|/|P∪R|"),
    "rvd": MetricInfo(
        False,
        "",
        "relative volume difference (|P|-|R|)/|R| (LiTS paper sign); smaller |RVD| is better",
    ),
    "assd": MetricInfo(False, "mm", "average symmetric surface distance"),
    "rmsd": MetricInfo(False, "mm", "root mean square symmetric surface distance"),
    "mssd": MetricInfo(False, "mm", "maximum symmetric surface distance (Hausdorff)"),
    "tumour_burden_rmse": MetricInfo(
        False, "", "RMSE over cases of tumour burden |tumour|/|liver|, predicted vs reference"
    ),
    "tumour_burden_max_abs_error": MetricInfo(
        False, "", "largest absolute tumour-burden error over the set"
    ),
    "detection_precision": MetricInfo(True, "", "lesion detection precision TP/(TP+FP), IoU > 0.5"),
    "detection_recall": MetricInfo(True, "", "lesion detection recall TP/(TP+FN), IoU > 0.5"),
    "detection_f1": MetricInfo(True, "", "lesion detection F1 2TP/(2TP+FP+FN), IoU > 0.5"),
    "detection_any_overlap_precision": MetricInfo(
        True, "", "lesion detection precision, a lesion counts as found at any overlap"
    ),
    "detection_any_overlap_recall": MetricInfo(
        True, "", "lesion detection recall, a lesion counts as found at any overlap"
    ),
    "detection_any_overlap_f1": MetricInfo(
        True, "", "lesion detection F1, a lesion counts as found at any overlap"
    ),
    "lesion_dice": MetricInfo(
        True, "", "mean Dice of each (merged) reference lesion with its matched prediction"
    ),
}
