"""The figure engine of `report` and `compare`, PNG bytes (matplotlib, Agg backend):
per-case Dice distributions per entry, tumour burden predicted vs reference, (report)
Fig. 3-like slices with reference and predicted contours for the best and worst case, and
(a run of several replicates) each replicate's Dice per case across the configurations.

Figures read `Entry` objects (per-case pandas frames); importing this module is what
loads matplotlib, so light commands import it only when they draw.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from e2net_eval.data import open_dataset  # noqa: E402
from e2net_eval.data.preprocess import HU_MAX, HU_MIN  # noqa: E402  (the paper's window)
from e2net_eval.metrics.predictions import PredictionFinder  # noqa: E402
from e2net_eval.report.entries import Entry, Replicated  # noqa: E402
from e2net_eval.report.results import RunResults  # noqa: E402
from e2net_eval.rundir import pred_dir  # noqa: E402

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
DPI = 110


def plain_text(func: Callable[P, R]) -> Callable[P, R]:
    """Draw with every text as plain text: names come from other people's files, and a name
    such as ``$\\x{..}$`` must not reach matplotlib's mathtext parser (it raised)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with matplotlib.rc_context({"text.parse_math": False}):
            return func(*args, **kwargs)

    return wrapper


def to_png(fig: plt.Figure) -> bytes:
    """Render and close a figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _dice_axes(ax: plt.Axes, region: str, x, labels: list[str]) -> None:
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"{region} Dice per case (%)")
    ax.set_title(region)
    ax.grid(axis="y", alpha=0.3)


@plain_text
def dice_distributions(entries: list[Entry], title: str, *, paired: bool = False) -> bytes | None:
    """Per-case Dice per entry: a box plot with every case as a dot, liver and tumour
    (`paired`: thin lines join the same case across entries)."""
    if not entries:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.3 * len(entries) * 2), 3.6), sharey=False)
    for ax, region in zip(axes, ("liver", "tumour"), strict=True):
        shown = [e for e in entries if region != "tumour" or e.segments_tumour]
        series = [e.values(region, "dice").dropna() * 100 for e in shown]
        if not shown or not any(len(v) for v in series):
            ax.set_axis_off()
            continue
        ax.boxplot([v.to_numpy() for v in series], showmeans=True, widths=0.5)
        rng = np.random.default_rng(0)
        x = [i + rng.uniform(-0.12, 0.12, len(v)) for i, v in enumerate(series, start=1)]
        if paired and len(series) > 1:
            frame = pd.concat(
                [pd.Series(xi, index=v.index) for xi, v in zip(x, series, strict=True)], axis=1
            )
            y = pd.concat(series, axis=1)
            for case in y.index:
                ok = y.loc[case].notna().to_numpy()
                if ok.sum() > 1:
                    xs, ys = frame.loc[case].to_numpy()[ok], y.loc[case].to_numpy()[ok]
                    ax.plot(xs, ys, color="0.6", lw=0.6, alpha=0.6, zorder=2)
        for xi, values in zip(x, series, strict=True):
            ax.scatter(xi, values.to_numpy(), s=12, alpha=0.7, zorder=3)
        _dice_axes(ax, region, range(1, len(shown) + 1), [e.label for e in shown])
    fig.suptitle(title, fontsize=8)
    return to_png(fig)


@plain_text
def replicate_lines(
    groups: list[Replicated],
    title: str,
    published: dict[str, dict[str, float | None]] | None = None,
) -> bytes | None:
    """Dice per case (%) of each configuration, one line per replicate across the
    configurations (so an ordering that flips between replicates shows as crossing lines),
    the mean over replicates as a black bar and the paper's one run (`published`: config ->
    region -> value in %) as a red cross; liver and tumour side by side."""
    if not groups:
        return None
    published = published or {}
    replicates = sorted({r for g in groups for r in g.by_replicate})
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.2 * len(groups) * 2), 3.6))
    for ax, region in zip(axes, ("liver", "tumour"), strict=True):
        shown = [g for g in groups if region != "tumour" or g.segments_tumour]
        key = f"regions.{region}.dice_per_case"
        if not shown:
            ax.set_axis_off()
            continue
        x = np.arange(1, len(shown) + 1)
        for r in replicates:
            y = np.array(
                [np.nan if v is None else 100 * v for g in shown for v in g.values(key, [r])]
            )
            ax.plot(x, y, marker="o", ms=4, lw=1, alpha=0.75, label=f"replicate {r}")
        means = [
            np.nanmean([np.nan if v is None else 100 * v for v in g.values(key)]) for g in shown
        ]
        ax.scatter(x, means, marker="_", s=400, color="black", zorder=4, label="mean")
        paper = [published.get(g.name, {}).get(region) for g in shown]
        if any(v is not None for v in paper):
            paper = [np.nan if v is None else v for v in paper]
            ax.scatter(x, paper, marker="x", color="red", zorder=5, label="paper (one run)")
        _dice_axes(ax, region, x, [g.label for g in shown])
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=8)
    return to_png(fig)


@plain_text
def burden_scatter(entries: list[Entry], title: str) -> bytes | None:
    """Tumour burden (tumour/liver voxels) predicted vs reference, one marker set per entry."""
    shown = [e for e in entries if e.segments_tumour]
    if not shown:
        return None
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    top = 0.0
    for e in shown:
        rows = e.region_rows("tumour")[["burden_ref", "burden_pred"]].astype("Float64").dropna()
        ref, pred = rows.to_numpy(dtype=float).T
        if len(ref):
            ax.scatter(ref, pred, s=16, alpha=0.75, label=e.label)
            top = max(top, ref.max(), pred.max())
    top = top * 1.05 or 1.0
    ax.plot([0, top], [0, top], color="0.4", lw=1, ls="--", label="identity")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("reference tumour burden")
    ax.set_ylabel("predicted tumour burden")
    ax.legend(fontsize=7)
    ax.set_title(f"Tumour burden, {title}", fontsize=9)
    return to_png(fig)


def best_worst(per_case: pd.DataFrame) -> tuple[str, str] | None:
    """Case ids with the highest and lowest tumour Dice among cases with a reference tumour
    (liver Dice when no case has one; ties broken by liver Dice). Equal when one case."""
    if per_case.empty:
        return None
    liver = per_case[per_case["region"] == "liver"].set_index("case")
    tumour = per_case[per_case["region"] == "tumour"].set_index("case")
    ids = list(dict.fromkeys(per_case["case"]))
    ref = tumour["ref_voxels"].astype("Float64").reindex(ids)
    burden = tumour["burden_ref"].astype("Float64").reindex(ids)
    has_tumour = ref.fillna(burden).fillna(0).to_numpy(dtype=float) > 0
    region = tumour if has_tumour.any() else liver
    values = region["dice"].astype("Float64").reindex(ids)
    liver_dice = liver["dice"].astype("Float64").reindex(ids).fillna(-1.0)
    scored = [
        (float(v), float(lv), cid)  # ties broken by liver Dice
        for v, lv, cid, h in zip(values, liver_dice, ids, has_tumour, strict=True)
        if v is not pd.NA and (h or not has_tumour.any())
    ]
    if not scored:
        return None
    scored.sort()
    return scored[-1][2], scored[0][2]


def _to_ras(arr: np.ndarray, affine: np.ndarray) -> np.ndarray:
    from e2net_eval.util.imports import import_nibabel

    nib = import_nibabel()

    ornt = nib.orientations.io_orientation(affine)
    return nib.orientations.apply_orientation(arr, ornt)


@plain_text
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
    ax.imshow(img[:, :, z].T, cmap="gray", origin="lower", vmin=HU_MIN, vmax=HU_MAX)
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
    names = ("liver, reference", "liver, predicted", "tumour, reference", "tumour, predicted")
    handles = [
        Line2D([], [], color=c, ls=ls, label=name)
        for name, (_, c, ls) in zip(names, styles, strict=True)
    ]
    legend = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.01), "ncol": 2, "fontsize": 7}
    ax.legend(handles=handles, frameon=False, **legend)
    ax.invert_xaxis()  # RAS: +x is the patient's right; radiological view shows it on the left
    ax.set_axis_off()
    ax.set_title(f"{title}\nslice {z}; solid = reference, dashed = prediction", fontsize=8)
    return to_png(fig)


def case_slices(
    run: RunResults, set_name: str, config: str, case_id: str, title: str
) -> bytes | None:
    """Load one case (data layer) and its prediction NIfTI (found as `evaluate` finds it)
    and draw `slice_panel`; None (and a log line) when the data or the prediction cannot be
    read."""
    from e2net_eval.util.imports import import_nibabel

    nib = import_nibabel()

    root = (run.info.get("data") or {}).get("lits" if set_name == "lits_val" else "ircadb")
    folder = pred_dir(run.root, set_name, config)
    try:
        pred_path = PredictionFinder(folder).find(case_id) if folder.is_dir() else None
        if root is None or pred_path is None:
            log.warning(
                "no data root or prediction for case %s (%s/%s): slice figure skipped",
                case_id,
                set_name,
                config,
            )
            return None
        root_path = Path(root) if Path(root).is_absolute() else run.root / root
        case = open_dataset(root_path).load(case_id)
        pred = np.asarray(nib.load(str(pred_path)).dataobj)
        return slice_panel(case.image, case.label, pred, case.affine, title)
    except Exception as exc:  # a figure must never sink the report
        log.warning("slice figure for case %s skipped: %s", case_id, exc)
        return None
