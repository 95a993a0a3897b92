"""Named mutation testing: apply one realistic one-line bug at a time, run the fast tests
that should catch it, restore the file, report killed / survived and the kill rate.

    python tools/mutate.py                 # every mutant (3-20 min on 2 cores: docs/testing.md)
    python tools/mutate.py M10 R05 D06     # some, by name
    python tools/mutate.py --list          # names, files, what each one breaks
    python tools/mutate.py --group metrics # one group: metrics, regress, data, targets, models, workflows

A mutant is *killed* when its tests fail (pytest exit 1, or 2-4: a collection or usage
error the mutant caused), *survived* when they pass, *stale* when its original snippet is
no longer in the file exactly once (the code moved on: fix the mutant, it is not counted).
Each file is restored byte-identical (and to its old mtime) after its mutant, also on
Ctrl-C or SIGTERM. While mutated the file carries another mtime than its cached .pyc
records, and the tests run with PYTHONDONTWRITEBYTECODE: a mutant never hides behind a
cached original, nor leaves a cached mutant behind.

Exit 0 when the kill rate is at least --min-rate (default 0.95) and nothing is stale, else
1; 2 on a bad argument. docs/testing.md records the last full run.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    group: str
    path: str  # relative to the repository
    original: str  # must occur exactly once in the file
    replacement: str
    tests: tuple[str, ...]  # pytest arguments, most targeted first (run with -x)
    what: str


# -- test sets (fast files; the mutant's own test first) ----------------------------------
HAND = "tests/metrics/test_hand_cases.py"
OVERLAP = (HAND, "tests/metrics/test_overlap.py", "tests/metrics/test_case_accumulate.py")
SURFACE = (HAND, "tests/metrics/test_surface.py", "tests/metrics/test_case_accumulate.py")
PEERS = (HAND, "tests/metrics/test_surface_peers.py", "tests/metrics/test_surface.py")
ACCUM = (HAND, "tests/metrics/test_case_accumulate.py", "tests/metrics/test_evaluate.py")
LESIONS = (HAND, "tests/metrics/test_lesions.py", "tests/metrics/test_case_accumulate.py")
PANOPTIC = ("tests/metrics/test_panoptic.py",)
SCORES = (HAND, "tests/metrics/test_case_accumulate.py", "tests/metrics/test_scores.py")
REGRESS = (
    "tests/report/test_regress_tolerances.py",
    "tests/report/test_regress.py",
    "tests/reliability/test_regress_strict.py",
)
BY_HAND = "tests/data/test_readers_by_hand.py"
NIFTI = (BY_HAND, "tests/data/test_data_readers.py", "tests/data/test_data_bad_input.py")
DICOM = ("tests/data/test_dicom_non_square.py", "tests/data/test_data_readers.py")
SPLIT = ("tests/data/test_data_commands.py", "tests/workflows/test_ablation_seeds_overlap.py")
OVERLAP_DATA = (BY_HAND, "tests/data/test_data_overlap.py")
TARGETS = ("tests/models/test_models_by_hand.py", "tests/models/test_models_losses_targets.py")
DCFF = ("tests/models/test_models_by_hand.py",)
ABLATION = ("tests/workflows/test_ablation_seeds_overlap.py", "tests/workflows/test_ablation.py")

M = "e2net_eval/metrics/"
OV, SU, AC, BU, LE, PA, CA, RE, NE = (
    M + f
    for f in (
        "overlap.py",
        "surface.py",
        "accumulate.py",
        "burden.py",
        "lesions.py",
        "panoptic.py",
        "case.py",
        "registry.py",
        "nearest.py",
    )
)
RG = "e2net_eval/report/regress.py"
NI, DI, DS, DO, SP = (
    "e2net_eval/data/" + f for f in ("nifti.py", "dicom.py", "dataset.py", "overlap.py", "split.py")
)
TG, DC, E2 = (f"reference_models/{f}" for f in ("targets.py", "dcff.py", "e2net.py"))
AB = "e2net_eval/workflows/ablation/steps.py"


def _m(name, group, path, original, replacement, tests, what) -> Mutant:
    return Mutant(name, group, path, original, replacement, tuple(tests), what)


MUTANTS: list[Mutant] = [
    # --- metrics: overlap ---------------------------------------------------------------
    _m(
        "M01",
        "metrics",
        OV,
        "else 2.0 * c.intersection / total",
        "else c.intersection / total",
        OVERLAP,
        "Dice without the factor 2",
    ),
    _m(
        "M02",
        "metrics",
        OV,
        "return 1.0 if total == 0 else",
        "return 0.0 if total == 0 else",
        OVERLAP,
        "Dice of two empty masks 0 instead of 1",
    ),
    _m(
        "M03",
        "metrics",
        OV,
        "else 1.0 - c.intersection / union",
        "else 1.0 - c.intersection / (c.pred + c.ref)",
        OVERLAP,
        "VOE over |P|+|R|, not the union",
    ),
    _m(
        "M04",
        "metrics",
        OV,
        "return (c.pred - c.ref) / c.ref",
        "return (c.ref - c.pred) / c.ref",
        OVERLAP,
        "RVD sign flipped",
    ),
    _m(
        "M05",
        "metrics",
        OV,
        "return (c.pred - c.ref) / c.ref",
        "return (c.pred - c.ref) / c.pred",
        OVERLAP,
        "RVD over |P| (the LiTS code's denominator)",
    ),
    _m(
        "M06",
        "metrics",
        OV,
        'return 0.0 if c.pred == 0 else float("nan")',
        "return 0.0",
        OVERLAP,
        "RVD with an empty reference 0 instead of undefined",
    ),
    _m(
        "M07",
        "metrics",
        OV,
        "return self.pred + self.ref - self.intersection",
        "return self.pred + self.ref",
        OVERLAP,
        "union counts the intersection twice",
    ),
    # --- metrics: surface distances ------------------------------------------------------
    _m(
        "M08",
        "metrics",
        SU,
        "return float((self.pred_to_ref.sum() + self.ref_to_pred.sum()) / self.n_surface)",
        "return float(0.5 * (self.pred_to_ref.mean() + self.ref_to_pred.mean()))",
        SURFACE,
        "ASSD as the mean of the two directed means (MASD)",
    ),
    _m(
        "M09",
        "metrics",
        SU,
        "return float(math.sqrt((np.dot(a, a) + np.dot(b, b)) / self.n_surface))",
        "return float((np.dot(a, a) + np.dot(b, b)) / self.n_surface)",
        SURFACE,
        "RMSD without the root",
    ),
    _m(
        "M10",
        "metrics",
        SU,
        "limit = tolerance_mm * (1.0 + NSD_TIE_RTOL)",
        "limit = tolerance_mm",
        PEERS,
        "NSD tie margin removed (survivor of the audit)",
    ),
    _m(
        "M11",
        "metrics",
        SU,
        "return float(max(self.pred_to_ref.max(), self.ref_to_pred.max()))",
        "return float(self.pred_to_ref.max())",
        SURFACE,
        "MSSD one-directional",
    ),
    _m(
        "M12",
        "metrics",
        SU,
        "return float(max(np.percentile(self.pred_to_ref, q), np.percentile(self.ref_to_pred, q)))",
        "return float(min(np.percentile(self.pred_to_ref, q), np.percentile(self.ref_to_pred, q)))",
        PEERS,
        "HD95 the smaller directed percentile",
    ),
    _m(
        "M13",
        "metrics",
        SU,
        "within += np.count_nonzero(self.ref_to_pred <= limit)",
        "within += np.count_nonzero(self.pred_to_ref <= limit)",
        PEERS,
        "NSD counts one direction twice",
    ),
    _m(
        "M14",
        "metrics",
        SU,
        "return 0.0 if self.n_surface == 0 else None",
        "return math.nan if self.n_surface == 0 else None",
        SURFACE,
        "two empty masks: distances NaN instead of 0",
    ),
    _m(
        "M15",
        "metrics",
        SU,
        "if not self.defined:\n            return 0.0",
        "if not self.defined:\n            return math.nan",
        PEERS,
        "NSD with one empty mask NaN instead of 0",
    ),
    _m(
        "M16",
        "metrics",
        AC,
        "return 1.0 if self.sum_sizes == 0 else",
        "return math.nan if self.sum_sizes == 0 else",
        ACCUM,
        "global Dice of a set with no tumour anywhere NaN (survivor of the audit)",
    ),
    _m(
        "M17",
        "metrics",
        AC,
        "self.sum_intersection += intersection",
        "self.sum_intersection = intersection",
        ACCUM,
        "global Dice keeps only the last case's overlap",
    ),
    _m(
        "M18",
        "metrics",
        SU,
        "return float(0.5 * (self.pred_to_ref.mean() + self.ref_to_pred.mean()))",
        "return float(self.pred_to_ref.mean() + self.ref_to_pred.mean())",
        PEERS,
        "MASD without the half",
    ),
    _m(
        "M19",
        "metrics",
        SU,
        "return float(np.percentile(np.concatenate([self.pred_to_ref, self.ref_to_pred]), q))",
        "return float(np.percentile(self.pred_to_ref, q))",
        PEERS,
        "pooled HD95 one-directional",
    ),
    _m(
        "M20",
        "metrics",
        NE,
        "return np.stack(np.unravel_index(flat, shape), axis=-1) * np.asarray(spacing, np.float64)",
        "return np.stack(np.unravel_index(flat, shape), axis=-1) * np.asarray(spacing[::-1], np.float64)",
        SURFACE,
        "tree distances with the spacing in reversed axis order",
    ),
    _m(
        "M21",
        "metrics",
        NE,
        "anisotropy=spacing, black_border=False",
        "anisotropy=spacing[::-1], black_border=False",
        (HAND, "tests/metrics/test_surface.py", "tests/metrics/test_surface_peers.py"),
        "EDT distances with the spacing in reversed axis order",
    ),
    # --- metrics: burden ------------------------------------------------------------------
    _m(
        "M22",
        "metrics",
        BU,
        "liver = int(np.count_nonzero(label >= LIVER))",
        "liver = int(np.count_nonzero(label == LIVER))",
        SCORES,
        "burden's liver without the tumour",
    ),
    _m(
        "M23",
        "metrics",
        BU,
        "return 0.0 if liver == 0 else tumour / liver",
        "return 0.0 if liver == 0 else tumour / (liver + tumour)",
        SCORES,
        "burden counts the tumour twice",
    ),
    _m(
        "M24",
        "metrics",
        BU,
        "return float(math.sqrt(float(np.mean(err * err))))",
        "return float(np.mean(np.abs(err)))",
        ACCUM + ("tests/metrics/test_scores.py",),
        "burden RMSE as a mean absolute error",
    ),
    _m(
        "M25",
        "metrics",
        BU,
        "return float(np.max(np.abs(np.asarray(self.pred) - np.asarray(self.ref))))",
        "return float(np.max(np.asarray(self.pred) - np.asarray(self.ref)))",
        ACCUM + ("tests/metrics/test_scores.py",),
        "burden max error ignores under-estimates",
    ),
    # --- metrics: lesions and panoptic ----------------------------------------------------
    _m(
        "M26",
        "metrics",
        LE,
        "if iou > iou_threshold:",
        "if iou >= iou_threshold:",
        LESIONS,
        "detection at IoU >= 0.5 instead of > 0.5",
    ),
    _m(
        "M27",
        "metrics",
        LE,
        "return _ratio(self.tp, self.tp + self.fp)",
        "return _ratio(self.tp, self.tp + self.fn)",
        LESIONS,
        "precision with FN",
    ),
    _m(
        "M28",
        "metrics",
        LE,
        "return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)",
        "return _ratio(self.tp, self.tp + self.fp + self.fn)",
        LESIONS,
        "F1 as the critical success index",
    ),
    _m(
        "M29",
        "metrics",
        LE,
        "lesion_dice.append(2.0 * shared / (q_size + int(g_size[k])))",
        "lesion_dice.append(shared / (q_size + int(g_size[k])))",
        LESIONS,
        "lesion Dice without the factor 2",
    ),
    _m(
        "M30",
        "metrics",
        LE,
        "at_iou += DetectionCounts(fp=int(np.count_nonzero(~detected_pred)))",
        "at_iou += DetectionCounts(fp=int(np.count_nonzero(match_of_pred < 0)))",
        LESIONS,
        "FP counts only predictions touching nothing",
    ),
    _m(
        "M31",
        "metrics",
        LE,
        "        if shared > 0:\n            any_overlap",
        "        if shared >= 0:\n            any_overlap",
        LESIONS,
        "any-overlap detection of a group nothing touches",
    ),
    _m(
        "M32",
        "metrics",
        LE,
        "touched = inter.max(axis=0) > 0",
        "touched = inter.max(axis=0) >= 0",
        LESIONS,
        "untouched reference lesions grouped with prediction 1",
    ),
    _m(
        "M33",
        "metrics",
        PA,
        "return self.tp / (self.tp + 0.5 * self.fp + 0.5 * self.fn)",
        "return self.tp / (self.tp + self.fp + self.fn)",
        PANOPTIC,
        "RQ without the halves",
    ),
    _m(
        "M34",
        "metrics",
        PA,
        "return math.nan if self.tp == 0 else self.sum_iou / self.tp",
        "return math.nan if self.tp == 0 else self.sum_iou / (self.tp + self.fp)",
        PANOPTIC,
        "SQ over TP + FP",
    ),
    _m(
        "M35",
        "metrics",
        PA,
        "return self.sum_iou / (self.tp + 0.5 * self.fp + 0.5 * self.fn)",
        "return self.sum_iou / (self.tp + 0.5 * self.fp)",
        PANOPTIC,
        "PQ ignores FN",
    ),
    _m(
        "M36",
        "metrics",
        PA,
        "fp=ov.n_pred - tp,",
        "fp=ov.n_pred,",
        PANOPTIC,
        "panoptic FP counts matched predictions",
    ),
    _m(
        "M37",
        "metrics",
        PA,
        "matched = 2 * inter > union",
        "matched = 2 * inter >= union",
        PANOPTIC,
        "panoptic match at IoU >= 0.5",
    ),
    # --- metrics: case scoring and set statistics -----------------------------------------
    _m(
        "M38",
        "metrics",
        CA,
        "p_liver, r_liver = p >= LIVER, r >= LIVER",
        "p_liver, r_liver = p == LIVER, r == LIVER",
        SCORES,
        "liver region without the tumour",
    ),
    _m(
        "M39",
        "metrics",
        CA,
        "no_liver_predicted=liver_c.pred == 0,",
        "no_liver_predicted=liver_c.ref == 0,",
        SCORES,
        "no-liver flag from the reference",
    ),
    _m(
        "M40",
        "metrics",
        CA,
        "voxel_volume_mm3=float(math.prod(float(s) for s in spacing)),",
        "voxel_volume_mm3=float(sum(float(s) for s in spacing)),",
        ACCUM,
        "voxel volume as a sum of spacings",
    ),
    _m(
        "M41",
        "metrics",
        CA,
        "burden_ref=burden_from_counts(tumour_c.ref, liver_c.ref),",
        "burden_ref=burden_from_counts(tumour_c.pred, liver_c.ref),",
        SCORES,
        "reference burden from the prediction",
    ),
    _m(
        "M42",
        "metrics",
        AC,
        '"median": float(np.median(good)) if good.size else nan,',
        '"median": float(np.mean(good)) if good.size else nan,',
        ACCUM,
        "median is the mean",
    ),
    _m(
        "M43",
        "metrics",
        AC,
        '"n_undefined": int(arr.size - good.size),',
        '"n_undefined": 0,',
        ACCUM,
        "undefined values dropped silently",
    ),
    _m(
        "M44",
        "metrics",
        RE,
        "NSD_TOLERANCE_MM = 2.0",
        "NSD_TOLERANCE_MM = 1.0",
        PEERS + ("tests/metrics/test_evaluate_peers.py",),
        "wrong default NSD tolerance",
    ),
    _m(
        "M45",
        "metrics",
        RE,
        "HD_PERCENTILE = 95.0",
        "HD_PERCENTILE = 99.0",
        PEERS + ("tests/metrics/test_evaluate_peers.py",),
        "wrong HD percentile",
    ),
    _m(
        "M46",
        "metrics",
        RE,
        "DEFAULT_CONNECTIVITY = 2",
        "DEFAULT_CONNECTIVITY = 1",
        SURFACE + ("tests/metrics/test_scores.py",),
        "LiTS surface neighbourhood 6 instead of 18",
    ),
    _m(
        "M47",
        "metrics",
        RE,
        "LESION_CONNECTIVITY = 6",
        "LESION_CONNECTIVITY = 26",
        LESIONS,
        "lesions as 26-connected components",
    ),
    _m(
        "M48",
        "metrics",
        RE,
        "DETECTION_IOU = 0.5",
        "DETECTION_IOU = 0.25",
        LESIONS,
        "detection threshold 0.25",
    ),
    # --- regress ---------------------------------------------------------------------------
    _m(
        "R01",
        "regress",
        RG,
        "gain = (cur - base) if hib else (base - cur)",
        "gain = cur - base",
        REGRESS,
        "lower-is-better metrics gated as higher-is-better",
    ),
    _m(
        "R02",
        "regress",
        RG,
        "base, cur = abs(base), abs(cur)",
        "base, cur = base, cur",
        REGRESS,
        "RVD compared signed",
    ),
    _m(
        "R03",
        "regress",
        RG,
        'if cur is None:\n        return "worse"',
        'if cur is None:\n        return "undefined"',
        REGRESS,
        "a metric that became undefined passes",
    ),
    _m(
        "R04",
        "regress",
        RG,
        "missing = sorted(set(baseline) - set(current))",
        "missing = sorted(set(current) - set(baseline))",
        REGRESS,
        "missing metrics looked up the wrong way",
    ),
    _m(
        "R05",
        "regress",
        RG,
        "if fnmatch.fnmatchcase(key, pattern) or fnmatch.fnmatchcase(metric, pattern):",
        "if fnmatch.fnmatchcase(key, pattern):",
        REGRESS,
        "--tolerance matched against full keys only (survivor)",
    ),
    _m(
        "R06",
        "regress",
        RG,
        "            chosen = value\n",
        "            chosen = value\n            break\n",
        REGRESS,
        "the first matching --tolerance wins (survivor)",
    ),
    _m(
        "R07",
        "regress",
        RG,
        "if not math.isfinite(tol) or tol < 0:",
        "if not math.isfinite(tol):",
        (*REGRESS, "tests/reliability/test_trust_b.py"),
        "negative tolerance accepted",
    ),
    _m(
        "R08",
        "regress",
        RG,
        "_EPS = 1e-12",
        "_EPS = 1e-3",
        REGRESS,
        "1e-3 slack at tolerance 0 (survivor)",
    ),
    _m(
        "R09",
        "regress",
        RG,
        '_NOT_GATED |= {"n_ref_lesions", "n_pred_lesions"}',
        '_NOT_GATED |= {"n_ref_lesions", "n_pred_lesions", "max_abs_error"}',
        REGRESS,
        "tumour_burden.max_abs_error not gated (survivor)",
    ),
    _m(
        "R10",
        "regress",
        RG,
        'return "undefined" if cur is None else "newly defined"',
        'return "undefined" if cur is None else "worse"',
        REGRESS,
        "a newly defined metric fails the gate",
    ),
    # --- data readers ----------------------------------------------------------------------
    _m(
        "D01",
        "data",
        NI,
        "return tuple(float(z) for z in img.header.get_zooms()[:3])",
        "return tuple(float(z) for z in img.header.get_zooms()[:3][::-1])",
        NIFTI,
        "NIfTI spacing reversed",
    ),
    _m(
        "D02",
        "data",
        NI,
        "image *= np.float32(slope)",
        "image += np.float32(slope)",
        NIFTI,
        "NIfTI scl_slope added, not multiplied",
    ),
    _m(
        "D03",
        "data",
        NI,
        "image += np.int16(inter)",
        "image -= np.int16(inter)",
        NIFTI,
        "NIfTI intercept subtracted (integer path)",
    ),
    _m(
        "D04",
        "data",
        NI,
        "if raw.size and raw.max() > TUMOUR:",
        "if raw.size and raw.max() > TUMOUR + 1:",
        NIFTI,
        "label value 3 accepted",
    ),
    _m(
        "D05",
        "data",
        DI,
        "order = sorted(heads, key=lambda k: along[k])",
        "order = sorted(heads, key=_natural_key)",
        DICOM,
        "DICOM slices in file-name order, not along the normal",
    ),
    _m(
        "D06",
        "data",
        DI,
        'ps = [float(v) for v in _numbers(ds, "PixelSpacing", 2, path, case)]',
        'ps = [float(v) for v in _numbers(ds, "PixelSpacing", 2, path, case)][::-1]',
        DICOM,
        "DICOM PixelSpacing row/column swapped (survivor)",
    ),
    _m(
        "D07",
        "data",
        DI,
        "(cols, rows, n), LPS_TO_RAS @ lps, spacing, positions, has_pos)",
        "(cols, rows, n), lps, spacing, positions, has_pos)",
        DICOM,
        "DICOM affine left in LPS",
    ),
    _m(
        "D08",
        "data",
        DI,
        "return float((positions[-1] - positions[0]) / (n - 1))",
        "return float((positions[-1] - positions[0]) / n)",
        DICOM,
        "slice distance off by one slice",
    ),
    _m(
        "D09",
        "data",
        DI,
        "(px.astype(np.float32) * np.float32(slope) + np.float32(inter)).T",
        "(px.astype(np.float32) + np.float32(inter)).T",
        DICOM,
        "DICOM RescaleSlope ignored (float path)",
    ),
    _m(
        "D10",
        "data",
        DI,
        "lab[_mask(masks[key], geom, src.label, case)] = 2",
        "lab[_mask(masks[key], geom, src.label, case)] = 1",
        DICOM,
        "3DIRCADb tumours read as liver",
    ),
    _m(
        "D11",
        "data",
        DI,
        "lps[:3, 0] = row_cos * ps[1]",
        "lps[:3, 0] = row_cos * ps[0]",
        DICOM,
        "DICOM affine column step from the row spacing",
    ),
    _m(
        "D12",
        "data",
        DS,
        "spacing = tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))",
        "spacing = tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=1))",
        (BY_HAND, "tests/data/test_label_only.py", "tests/data/test_data_readers.py"),
        "spacing from the affine's rows",
    ),
    _m(
        "D13",
        "data",
        DO,
        "if score < threshold or lcid in used_l or icid in used_i:",
        "if score < threshold or lcid in used_l:",
        OVERLAP_DATA,
        "one 3DIRCADb patient matched twice",
    ),
    _m(
        "D14",
        "data",
        SP,
        '"train": [c for c in pool if c not in val],',
        '"train": [c for c in ids if c not in val],',
        SPLIT,
        "excluded (3DIRCADb) cases trained on: a leak",
    ),
    _m(
        "D15",
        "data",
        SP,
        "round(n * PAPER_VALIDATION / PAPER_TOTAL)",
        "int(n * PAPER_VALIDATION / PAPER_TOTAL)",
        SPLIT,
        "validation size rounded down",
    ),
    _m(
        "D16",
        "data",
        SP,
        "pool = [c for c in ids if c not in set(excluded)]",
        "pool = list(ids)",
        SPLIT,
        "exclusion ignored by the split",
    ),
    _m(
        "D17",
        "data",
        SP,
        "for g in by_remainder[: k - sum(take.values())]:",
        "for g in by_remainder[: k - sum(take.values()) - 1]:",
        SPLIT,
        "stratified validation one case short",
    ),
    # --- edge targets ----------------------------------------------------------------------
    _m(
        "RM05",
        "targets",
        TG,
        "_CROSS = ndimage.generate_binary_structure(2, 1)",
        "_CROSS = ndimage.generate_binary_structure(2, 2)",
        TARGETS,
        "edge erosion with 8 neighbours (gate-only)",
    ),
    _m(
        "T01",
        "targets",
        TG,
        "structure=_CROSS, border_value=1)",
        "structure=_CROSS, border_value=0)",
        TARGETS,
        "crop border drawn as an edge",
    ),
    _m(
        "T02",
        "targets",
        TG,
        "dist = ndimage.distance_transform_edt(~edge) * m",
        "dist = ndimage.distance_transform_edt(~edge)",
        TARGETS,
        "distance maximum taken outside the object",
    ),
    _m(
        "T03",
        "targets",
        TG,
        "return ((1.0 - norm) * m).astype(np.float32)",
        "return (1.0 - norm).astype(np.float32)",
        TARGETS,
        "distance target 1 outside the object (the paper's literal formula)",
    ),
    _m(
        "T04",
        "targets",
        TG,
        "dist = ndimage.distance_transform_edt(~edge) * m",
        'dist = ndimage.distance_transform_cdt(~edge, metric="taxicab") * m',
        TARGETS,
        "city-block distance",
    ),
    _m(
        "T05",
        "targets",
        TG,
        'fn = edge_map if kind == "edge" else distance_map',
        'fn = distance_map if kind == "edge" else edge_map',
        TARGETS,
        "edge and dist targets swapped",
    ),
    # --- models: DCFF wiring (gate-only catches of the audit) -------------------------------
    _m(
        "RM07",
        "models",
        DC,
        "return self.seg(seg, edge), self.edge(edge, seg)",
        "return self.seg(seg, edge), self.edge(seg, edge)",
        DCFF,
        "edge features refined with themselves",
    ),
    _m(
        "RM08",
        "models",
        DC,
        "        return a_i + h\n",
        "        return h\n",
        DCFF,
        "DCFF residual dropped",
    ),
    _m(
        "RM09",
        "models",
        DC,
        'self.seg = CrossRefine(n_scales, channels, "concat")',
        'self.seg = CrossRefine(n_scales, channels, "product")',
        DCFF,
        "segmentation side combined by product",
    ),
    _m(
        "RM10",
        "models",
        E2,
        "seg_feats, edge_feats = self.dcff(seg_feats, edge_feats)",
        "edge_feats, seg_feats = self.dcff(edge_feats, seg_feats)",
        DCFF,
        "E2Net feeds DCFF the branches swapped",
    ),
    _m(
        "RM11",
        "models",
        DC,
        "h = self.chain[k](self._join(upsample_to(h, g[k]), g[k]))",
        "h = self.chain[k](self._join(upsample_to(h, g[k]), upsample_to(g[-1], g[k])))",
        DCFF,
        "DCFF chain joins the coarsest G at every step",
    ),
    # --- workflows: seeds, overlap, leaks --------------------------------------------------
    _m(
        "W03",
        "workflows",
        AB,
        "            rep.split_seed,\n            exclude=exclude,",
        "            rep.seed,\n            exclude=exclude,",
        ABLATION,
        "split drawn with the training seed (survivor)",
    ),
    _m(
        "W06",
        "workflows",
        AB,
        'return (step.get("outputs") or []) if step.get("done") else []',
        "return []",
        ABLATION,
        "a split in a worker process ignores the overlap (gate-only)",
    ),
    _m(
        "W07",
        "workflows",
        AB,
        'step = load_json(path).get("steps", {}).get(name, {}) if path.is_file() else {}',
        "step = {}",
        ABLATION,
        "the overlap of the state file never read (gate-only)",
    ),
    _m(
        "L01",
        "workflows",
        AB,
        'exclude = [] if self.args.paper_protocol else [m["lits"] for m in self.overlap()]',
        "exclude = []",
        ABLATION,
        "leak-free protocol trains on the 3DIRCADb patients",
    ),
    _m(
        "L02",
        "workflows",
        AB,
        "            split=root / SPLIT_JSON,\n",
        "            split=None,\n",
        ABLATION,
        "training draws its own split, without the exclusion: a leak",
    ),
]


@dataclass
class Result:
    mutant: Mutant
    status: str  # killed, survived, stale, timeout
    seconds: float
    detail: str = ""


class _Interrupted(Exception):
    pass


def _raise_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def mutated(mutant: Mutant, root: Path = REPO) -> Iterator[Path]:
    """The mutant applied to its file for the duration; the original bytes always back."""
    path = root / mutant.path
    original = path.read_bytes()
    st = path.stat()
    text = original.decode("utf-8")
    if text.count(mutant.original) != 1:
        raise LookupError(
            f"{mutant.path}: original snippet found {text.count(mutant.original)} times"
        )
    try:
        path.write_bytes(text.replace(mutant.original, mutant.replacement).encode("utf-8"))
        # another mtime than the cached .pyc records: Python compiles the mutant from source
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
        yield path
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the cached .pyc is valid again


def run_tests(tests: Sequence[str], timeout: float, root: Path = REPO) -> tuple[int | None, str]:
    """pytest -x on `tests` in a subprocess, `root` first on the path; (exit code, last line)."""
    env = dict(os.environ)
    env.update(
        PYTHONDONTWRITEBYTECODE="1",  # no .pyc of a mutant is ever written
        PYTHONPATH=str(root),
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
    )
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        proc = subprocess.run(
            cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None, f"timeout after {timeout:.0f} s"
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    failed = [ln for ln in lines if ln.startswith(("FAILED ", "ERROR "))]
    if failed:  # the test that killed it (pytest -ra's summary line, message cut)
        return proc.returncode, failed[0].split(" - ")[0]
    return proc.returncode, lines[-1] if lines else proc.stderr.strip()[-200:]


def run_mutant(mutant: Mutant, timeout: float, root: Path = REPO) -> Result:
    """Apply `mutant` under `root` (a clone), run its tests there, restore the file."""
    start = time.monotonic()
    try:
        with mutated(mutant, root):
            code, last = run_tests(mutant.tests, timeout, root)
    except LookupError as exc:
        return Result(mutant, "stale", 0.0, str(exc))
    seconds = time.monotonic() - start
    if code is None:
        return Result(mutant, "timeout", seconds, last)
    if code == 0:
        return Result(mutant, "survived", seconds, last)
    if code == 5:
        return Result(mutant, "stale", seconds, "no test collected: " + last)
    return Result(mutant, "killed", seconds, last)


def select(names: Sequence[str], group: str | None) -> list[Mutant]:
    known = {m.name: m for m in MUTANTS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"error: unknown mutant(s) {', '.join(unknown)} (see --list)")
    chosen = [known[n] for n in names] if names else list(MUTANTS)
    if group is not None:
        chosen = [m for m in chosen if m.group == group]
    return chosen


def summarise(results: list[Result]) -> tuple[int, int, float]:
    counted = [r for r in results if r.status != "stale"]
    killed = sum(r.status in ("killed", "timeout") for r in counted)
    rate = killed / len(counted) if counted else 0.0
    return killed, len(counted), rate


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="mutant names (default: all)")
    ap.add_argument("--group", choices=sorted({m.group for m in MUTANTS}))
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant's tests")
    ap.add_argument("--min-rate", type=float, default=0.95, help="kill rate needed for exit 0")
    args = ap.parse_args(argv)
    chosen = select(args.names, args.group)
    if args.list:
        for m in chosen:
            print(f"{m.name:5} {m.group:9} {m.path:36} {m.what}")
        return 0
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    results: list[Result] = []
    try:
        for k, mutant in enumerate(chosen, start=1):
            r = run_mutant(mutant, args.timeout)
            results.append(r)
            print(
                f"[{k}/{len(chosen)}] {mutant.name:5} {r.status.upper():8} {r.seconds:6.1f}s  "
                f"{mutant.path}: {mutant.what}  ({r.detail})",
                flush=True,
            )
    except KeyboardInterrupt:
        print("interrupted: every file restored", file=sys.stderr)
        return 130
    killed, counted, rate = summarise(results)
    stale = [r.mutant.name for r in results if r.status == "stale"]
    survived = [r.mutant.name for r in results if r.status == "survived"]
    print(
        f"\nkilled {killed} of {counted} ({100 * rate:.1f} %); survived: "
        f"{', '.join(survived) or 'none'}; stale: {', '.join(stale) or 'none'}"
    )
    return 0 if rate >= args.min_rate and not stale else 1


if __name__ == "__main__":
    sys.exit(main())
