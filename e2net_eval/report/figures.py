"""Report figures as PNG bytes (matplotlib, Agg backend): per-case Dice distributions,
tumour burden predicted vs reference, and Fig. 3-like slices with reference and predicted
contours for the best and worst case.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from e2net_eval.report.results import (  # noqa: E402
    RunResults,
    case_ids,
    per_case,
    segments_tumour,
)
from e2net_eval.rundir import SET_TITLES, pred_dir  # noqa: E402
from reference_models.registry import model_label  # noqa: E402

log = logging.getLogger(__name__)
HU_WINDOW = (-100.0, 240.0)  # the paper's clipping window, also used for display
DPI = 110


def to_png(fig: plt.Figure) -> bytes:
    """Render and close a figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def dice_distributions(run: RunResults, set_name: str) -> bytes | None:
    """Per-case Dice per configuration: a box plot with every case as a dot, liver and tumour."""
    configs = run.configs(set_name)
    if not configs:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.3 * len(configs) * 2), 3.6), sharey=False)
    for ax, region in zip(axes, ("liver", "tumour"), strict=True):
        data, labels = [], []
        for config in configs:
            if region == "tumour" and not segments_tumour(config):
                continue
            values = [v for v in per_case(run.summaries[set_name][config], region) if v is not None]
            data.append(np.asarray(values, dtype=float) * 100)
            labels.append(model_label(config))
        if not data:
            ax.set_axis_off()
            continue
        ax.boxplot(data, showmeans=True, widths=0.5)
        rng = np.random.default_rng(0)
        for i, values in enumerate(data, start=1):
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=12, alpha=0.7, zorder=3)
        ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(f"{region} Dice per case (%)")
        ax.set_title(region)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(run.provenance(set_name), fontsize=8)
    return to_png(fig)


def burden_scatter(run: RunResults, set_name: str) -> bytes | None:
    """Tumour burden (tumour/liver voxels) predicted vs reference, one marker set per config."""
    configs = [c for c in run.configs(set_name) if segments_tumour(c)]
    if not configs:
        return None
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    top = 0.0
    for config in configs:
        ref, pred = [], []
        for row in run.summaries[set_name][config]["metric_per_case"]:
            b = row.get("tumour_burden") or {}
            if b.get("reference") is not None and b.get("predicted") is not None:
                ref.append(b["reference"])
                pred.append(b["predicted"])
        if ref:
            ax.scatter(ref, pred, s=16, alpha=0.75, label=model_label(config))
            top = max(top, max(ref), max(pred))
    top = top * 1.05 or 1.0
    ax.plot([0, top], [0, top], color="0.4", lw=1, ls="--", label="identity")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("reference tumour burden")
    ax.set_ylabel("predicted tumour burden")
    ax.legend(fontsize=7)
    ax.set_title(f"Tumour burden, {SET_TITLES.get(set_name, set_name)}", fontsize=9)
    return to_png(fig)


def best_worst(summary: dict[str, Any]) -> tuple[str, str] | None:
    """Case ids with the highest and lowest tumour Dice among cases with a reference tumour
    (liver Dice when no case has one; ties broken by liver Dice). Equal when one case."""
    ids = case_ids(summary)
    if not ids:
        return None
    has_tumour = []
    for row in summary["metric_per_case"]:
        t = row.get("tumour") or {}
        b = row.get("tumour_burden") or {}
        ref = t.get("ref_voxels", None)
        has_tumour.append(bool(ref) if ref is not None else bool(b.get("reference")))
    region = "tumour" if any(has_tumour) else "liver"
    liver = per_case(summary, "liver")
    scored = [
        (v, lv if lv is not None else -1.0, cid)  # ties broken by liver Dice
        for v, lv, cid, h in zip(per_case(summary, region), liver, ids, has_tumour, strict=True)
        if v is not None and (h or region == "liver")
    ]
    if not scored:
        return None
    scored.sort()
    return scored[-1][2], scored[0][2]


def _to_ras(arr: np.ndarray, affine: np.ndarray) -> np.ndarray:
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    return nib.orientations.apply_orientation(arr, ornt)


def slice_panel(
    image: np.ndarray,
    reference: np.ndarray,
    prediction: np.ndarray,
    affine: np.ndarray,
    title: str,
) -> bytes:
    """The axial slice with the largest reference tumour (else liver) area, radiological view
    (patient's right on the left, anterior up), with contours: reference solid, prediction
    dashed; liver green/yellow, tumour red/magenta. Arrays `(X, Y, Z)`, same shape."""
    if not (image.shape == reference.shape == prediction.shape):
        raise ValueError(f"shapes differ: {image.shape}, {reference.shape}, {prediction.shape}")
    img, ref, pred = (_to_ras(np.asarray(a), affine) for a in (image, reference, prediction))
    tumour_area = (ref == 2).sum(axis=(0, 1))
    area = tumour_area if tumour_area.any() else (ref >= 1).sum(axis=(0, 1))
    z = int(np.argmax(area))
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.imshow(img[:, :, z].T, cmap="gray", origin="lower", vmin=HU_WINDOW[0], vmax=HU_WINDOW[1])
    styles = [
        (ref >= 1, "lime", "solid"),
        (pred >= 1, "yellow", "dashed"),
        (ref == 2, "red", "solid"),
        (pred == 2, "magenta", "dashed"),
    ]
    for mask, colour, ls in styles:
        sl = mask[:, :, z].T.astype(float)
        if sl.any():
            ax.contour(
                sl, levels=[0.5], colors=colour, linestyles=ls, linewidths=1.0, origin="lower"
            )
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=c, ls=ls, label=name)
        for name, (_, c, ls) in zip(
            ("liver, reference", "liver, predicted", "tumour, reference", "tumour, predicted"),
            styles,
            strict=True,
        )
    ]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.01),
        ncol=2,
        fontsize=7,
        frameon=False,
    )
    ax.invert_xaxis()  # RAS: +x is the patient's right; radiological view shows it on the left
    ax.set_axis_off()
    ax.set_title(f"{title}\nslice {z}; solid = reference, dashed = prediction", fontsize=8)
    return to_png(fig)


def case_slices(
    run: RunResults, set_name: str, config: str, case_id: str, title: str
) -> bytes | None:
    """Load one case (data layer) and its prediction NIfTI and draw `slice_panel`; None (and a
    log line) when the data or the prediction cannot be read."""
    import nibabel as nib

    roots = run.info.get("data") or {}
    root = roots.get("lits" if set_name == "lits_val" else "ircadb")
    pred_path = next(
        (
            p
            for p in (
                pred_dir(run.root, set_name, config) / f"{case_id}{s}" for s in (".nii.gz", ".nii")
            )
            if p.is_file()
        ),
        None,
    )
    if root is None or pred_path is None:
        log.warning(
            "no data root or prediction for case %s (%s/%s): slice figure skipped",
            case_id,
            set_name,
            config,
        )
        return None
    try:
        from e2net_eval.data import open_dataset

        root_path = Path(root) if Path(root).is_absolute() else run.root / root
        case = open_dataset(root_path).load(case_id)
        pred = np.asarray(nib.load(str(pred_path)).dataobj)
        return slice_panel(case.image, case.label, pred, case.affine, title)
    except Exception as exc:  # a figure must never sink the report
        log.warning("slice figure for case %s skipped: %s", case_id, exc)
        return None
