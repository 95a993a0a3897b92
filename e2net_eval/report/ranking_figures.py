"""Figures of a ranking (`ranking_report.Ranked`), PNG bytes (matplotlib, Agg): the
challengeR set. Dot-and-boxplots of the values, podium plot, ranking heatmap,
significance map, blob plots of bootstrap ranks (per task and across tasks) and a line
plot of ranking robustness across methods. Importing this module loads matplotlib.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from e2net_eval.report.figures import to_png  # noqa: E402
from e2net_eval.report.ranking import MEAN  # noqa: E402

#: The method figures use when they show one (the first in the ranking if absent).
MAIN = MEAN


def _main(r: Any) -> str:
    methods = list(dict.fromkeys(r.rankings["method"]))
    return MAIN if MAIN in methods else methods[0]


def _order(r: Any, task: str) -> list[str]:
    """Entries of a task, best first by the main method."""
    part = r.rankings[(r.rankings["task"] == task) & (r.rankings["method"] == _main(r))]
    return list(part.sort_values(["rank", "entry"], kind="stable")["entry"])


def _tasks(r: Any) -> list[str]:
    return list(dict.fromkeys(r.rankings["task"]))


def _grid(n: int, width: float = 4.2, height: float = 3.4):
    cols = min(n, 2)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    return fig, list(axes.flat[:n])


def _per_task(draw: Callable[[Any, Any, str], None]) -> Callable[[Any], bytes]:
    """A figure of one panel per task: `draw(r, ax, task)` fills each."""

    @functools.wraps(draw)
    def figure(r: Any) -> bytes:
        fig, axes = _grid(len(_tasks(r)))
        for ax, task in zip(axes, _tasks(r), strict=True):
            draw(r, ax, task)
        fig.tight_layout()
        return to_png(fig)

    return figure


@_per_task
def dot_boxplots(r: Any, ax: Any, task: str) -> None:
    """Per task: each entry's values over the cases (box: quartiles, dots: cases)."""
    order = _order(r, task)
    part = r.frame[r.frame["task"] == task]
    data = [part.loc[part["entry"] == e, "value"].dropna().to_numpy() for e in order]
    ax.boxplot(data, widths=0.5, showfliers=False)
    rng = np.random.default_rng(0)
    for i, v in enumerate(data, start=1):
        ax.plot(i + rng.uniform(-0.15, 0.15, len(v)), v, ".", alpha=0.5, ms=3)
    ax.set_xticks(range(1, len(order) + 1), order, rotation=45, ha="right", fontsize=7)
    ax.set_title(task, fontsize=9)


@_per_task
def podium(r: Any, ax: Any, task: str) -> None:
    """Per task: each case's values drawn at its entries' podium places (rank within the
    case), lines joining one case; below, each entry's place counts."""
    order = _order(r, task)
    part = r.frame[r.frame["task"] == task]
    wide = part.pivot(index="case", columns="entry", values="value")[order]
    hi = r.higher[task]
    places = wide.rank(axis=1, method="first", ascending=not hi)
    colours = plt.cm.tab10(np.arange(len(order)) % 10)
    for case in wide.index:
        x, y = places.loc[case].to_numpy(), wide.loc[case].to_numpy()
        keep = ~np.isnan(y)
        idx = np.argsort(x[keep])
        ax.plot(x[keep][idx], y[keep][idx], color="grey", lw=0.3, alpha=0.4)
    for k, e in enumerate(order):
        ax.plot(places[e], wide[e], "o", ms=3, color=colours[k], label=e)
    ax.set_xticks(range(1, len(order) + 1))
    ax.set_xlabel("podium place (rank within the case)", fontsize=8)
    ax.set_title(task, fontsize=9)
    ax.legend(fontsize=6, ncol=2)


@_per_task
def ranking_heatmap(r: Any, ax: Any, task: str) -> None:
    """Per task: how often each entry (rows, by rank) got each place within a case."""
    order = _order(r, task)
    part = r.frame[r.frame["task"] == task]
    wide = part.pivot(index="case", columns="entry", values="value")[order]
    ranks = wide.rank(axis=1, method="min", ascending=not r.higher[task])
    n = len(order)
    counts = np.array([[(ranks[e] == k).sum() for k in range(1, n + 1)] for e in order])
    im = ax.imshow(counts, cmap="viridis", aspect="auto")
    ax.set_yticks(range(n), order, fontsize=7)
    ax.set_xticks(range(n), [str(k) for k in range(1, n + 1)], fontsize=7)
    ax.set_xlabel("rank within the case", fontsize=8)
    ax.set_title(task, fontsize=9)
    ax.figure.colorbar(im, ax=ax, label="cases")


@_per_task
def significance_map(r: Any, ax: Any, task: str) -> None:
    """Per task: row entry significantly better than column entry (dark)."""
    order = _order(r, task)
    part = r.significance[r.significance["task"] == task]
    w = part.pivot(index="entry", columns="other", values="significant")
    w = w.reindex(index=order, columns=order).astype(float).fillna(0.0)
    ax.imshow(w.to_numpy(), cmap="Greys", vmin=0, vmax=1.3)
    ax.set_xticks(range(len(order)), order, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(order)), order, fontsize=7)
    ax.set_title(f"{task}: row better than column", fontsize=9)


def _blob(ax, draws: pd.DataFrame, order: list[str], full: pd.Series) -> None:
    n = len(order)
    for i, e in enumerate(order, start=1):
        if e not in draws.columns:
            continue
        v = draws[e].dropna().to_numpy()
        ranks, counts = np.unique(v, return_counts=True)
        ax.scatter(np.full(len(ranks), i), ranks, s=300 * counts / max(len(v), 1), alpha=0.6)
        lo, med, hi = np.quantile(v, [0.025, 0.5, 0.975])
        ax.plot([i, i], [lo, hi], color="black", lw=1)
        ax.plot(i, full[e], "x", color="red")
    ax.set_xticks(range(1, n + 1), order, rotation=45, ha="right", fontsize=7)
    ax.set_ylim(n + 0.5, 0.5)
    ax.set_ylabel("rank", fontsize=8)


@_per_task
def blob_per_task(r: Any, ax: Any, task: str) -> None:
    """Per task: bootstrap rank frequencies (blob area), 95% interval (bar), full-data
    rank (red cross), main method."""
    m = _main(r)
    order = _order(r, task)
    full = r.rankings[(r.rankings["task"] == task) & (r.rankings["method"] == m)]
    _blob(ax, r.draws[(task, m)], order, full.set_index("entry")["rank"].astype(float))
    ax.set_title(f"{task} ({m})", fontsize=9)


def blob_across_tasks(r: Any) -> bytes:
    """Per entry (by consensus): its bootstrap rank distribution in each task."""
    m = _main(r)
    cons = r.consensus[r.consensus["method"] == m].sort_values(["rank", "entry"], kind="stable")
    order = list(cons["entry"])
    tasks = _tasks(r)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(order) + 2), 4.0))
    width = 0.8 / max(len(tasks), 1)
    for k, task in enumerate(tasks):
        draws = r.draws[(task, m)]
        for i, e in enumerate(order):
            if e not in draws.columns:
                continue
            v = draws[e].dropna().to_numpy()
            ranks, counts = np.unique(v, return_counts=True)
            x = i + (k - (len(tasks) - 1) / 2) * width
            style = {"alpha": 0.6, "color": plt.cm.tab10(k % 10), "label": task if i == 0 else None}
            ax.scatter(np.full(len(ranks), x), ranks, s=200 * counts / len(v), **style)
    ax.set_xticks(range(len(order)), order, rotation=45, ha="right", fontsize=7)
    ax.set_ylim(len(order) + 0.5, 0.5)
    ax.set_ylabel(f"bootstrap rank ({m})", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return to_png(fig)


@_per_task
def robustness_lines(r: Any, ax: Any, task: str) -> None:
    """Per task: each entry's rank under each method, one line per entry."""
    part = r.rankings[r.rankings["task"] == task]
    methods = list(dict.fromkeys(part["method"]))
    w = part.pivot(index="entry", columns="method", values="rank")[methods].astype(float)
    for e in _order(r, task):
        ax.plot(range(len(methods)), w.loc[e], "o-", lw=1, ms=3, label=e)
    ax.set_xticks(range(len(methods)), methods, rotation=20, ha="right", fontsize=7)
    ax.set_ylim(len(w) + 0.5, 0.5)
    ax.set_ylabel("rank", fontsize=8)
    ax.set_title(task, fontsize=9)
    ax.legend(fontsize=6, ncol=2)


def all_figures(r: Any) -> list[tuple[str, str, bytes]]:
    """(file stem, caption, PNG) of every figure of a ranking."""
    m = _main(r)
    return [
        ("values", "Values per entry and task (box: quartiles; dots: cases)", dot_boxplots(r)),
        ("podium", "Podium plot: each case's values at its podium places", podium(r)),
        (
            "heatmap",
            "Ranking heatmap: how often an entry takes each place within a case",
            ranking_heatmap(r),
        ),
        ("significance", "Significance map (one-sided Wilcoxon, adjusted)", significance_map(r)),
        ("blob_tasks", f"Blob plot of bootstrap ranks per task ({m})", blob_per_task(r)),
        (
            "blob_across",
            f"Bootstrap ranks across tasks, entries by consensus ({m})",
            blob_across_tasks(r),
        ),
        ("robustness", "Ranking robustness across methods", robustness_lines(r)),
    ]
