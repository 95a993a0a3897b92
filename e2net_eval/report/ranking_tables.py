"""The ablation report's ranking section: its configurations ranked by the engine of
`e2net-eval rank` (`ranking_report.rank_frame`) on each evaluation set, and with
replicates, in each replicate and by their consensus."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from e2net_eval.report import ranking
from e2net_eval.report.entries import Entry, Replicated
from e2net_eval.report.ranking_report import Ranked, Request, long_frame, parse_tasks, rank_frame
from e2net_eval.report.results import RunResults
from e2net_eval.report.tables import Cell, ReportTable, entry_row
from e2net_eval.rundir import SET_TITLES

#: Tasks of the ablation report's ranking (the paper's per-case figures).
REPORT_TASKS = ("liver/dice", "tumour/dice")
#: Bootstrap draws and seed of the ablation report's ranking.
REPORT_BOOT, REPORT_SEED = 1000, 0


def _defined(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the tasks with at least one defined value."""
    return frame[frame.groupby("task")["value"].transform(lambda v: v.notna().any())]


def _rank_cell(frame: pd.DataFrame, **where: str) -> Cell:
    hit = frame
    for k, v in where.items():
        hit = hit[hit[k] == v]
    return Cell(None if hit.empty else float(hit["rank"].iloc[0]), decimals=0)


def _entry_cells(r: Ranked, tasks: list[str], name: str) -> list[Cell]:
    """Consensus; per task the mean rank with its bootstrap interval, the
    rank-then-aggregate and test-then-rank ranks of one entry."""
    cells = [_rank_cell(r.consensus, method=ranking.MEAN, entry=name)]
    for t in tasks:
        b = r.bootstrap
        b = b[(b["task"] == t) & (b["method"] == ranking.MEAN) & (b["entry"] == name)]
        full = _rank_cell(r.rankings, task=t, method=ranking.MEAN, entry=name)
        if not b.empty and full.value is not None:
            low, high = float(b["rank_q025"].iloc[0]), float(b["rank_q975"].iloc[0])
            full = Cell(full.value, low, high, decimals=0)
        cells.append(full)
        for m in (ranking.RANK_THEN_AGGREGATE, ranking.TEST_THEN_RANK):
            cells.append(_rank_cell(r.rankings, task=t, method=m, entry=name))
    return cells


def ranking_table(entries: Sequence[Entry], key: str, title: str) -> ReportTable | None:
    """The report's ranking of its configurations (the entries of one set): per task the
    mean-Dice rank with its bootstrap 95% interval, the rank-then-aggregate and
    test-then-rank ranks, and the consensus over the tasks; None when fewer than two
    configurations, or fewer than two cases, have per-case values (a bootstrap over one
    case says nothing)."""
    named = [(e.name, e.evaluation) for e in entries]
    frame, higher = long_frame(named, parse_tasks(REPORT_TASKS))
    frame = _defined(frame)
    if frame.empty or frame["entry"].nunique() < 2 or frame["case"].nunique() < 2:
        return None
    higher = {t: h for t, h in higher.items() if t in set(frame["task"])}
    r = rank_frame(frame, higher, Request(n_boot=REPORT_BOOT, seed=REPORT_SEED))
    tasks = list(higher)
    columns = [("consensus", "Consensus (mean)")]
    for t in tasks:
        columns += [(f"{t}:mean", f"{t} mean [95% boot]"), (f"{t}:rta", f"{t} rank-then-agg.")]
        columns += [(f"{t}:ttr", f"{t} test-then-rank")]
    rows = [entry_row(e, _entry_cells(r, tasks, e.name)) for e in entries]
    notes = [
        "Ranks (1 best, ties min) of the configurations as `e2net-eval rank` computes them "
        f"(docs/reports.md): mean Dice per case with the 2.5-97.5% bootstrap rank interval "
        f"({REPORT_BOOT} draws over cases, seed {REPORT_SEED}), rank-then-aggregate, "
        "test-then-rank (one-sided Wilcoxon, alpha 0.05, no adjustment); consensus: mean of "
        "the mean-Dice ranks over the tasks, ties averaged, ranked. Undefined values dropped."
    ]
    return ReportTable(key, title, columns, rows, notes)


def _replicate_ranks(groups: Sequence[Replicated]) -> pd.DataFrame | None:
    """The mean-Dice rankings of each replicate (tasks ``r<i> <task>``); None when no
    replicate has two configurations."""
    parts, higher = [], {}
    for rep in sorted({r for g in groups for r in g.by_replicate}):
        named = [(g.name, g.by_replicate[rep].evaluation) for g in groups if rep in g.by_replicate]
        if len(named) < 2:
            continue
        frame, h = long_frame(named, parse_tasks(REPORT_TASKS))
        parts.append(frame.assign(task=f"r{rep} " + frame["task"]))
        higher.update({f"r{rep} {t}": v for t, v in h.items()})
    if not parts:
        return None
    frame = _defined(pd.concat(parts, ignore_index=True))
    opts = ranking.Options(methods=(ranking.MEAN,))
    return ranking.rankings(ranking.prepare(frame, higher, opts), higher, opts)


def replicate_ranking_table(
    groups: Sequence[Replicated], key: str, title: str
) -> ReportTable | None:
    """The configurations (the groups of one set) ranked by mean Dice per case in each
    replicate: per task the consensus over the replicates with the range of the
    replicates' ranks, and each replicate's rank; None with fewer than two configurations."""
    ranked = _replicate_ranks(groups)
    if ranked is None:
        return None
    columns, cells = [], {g.name: [] for g in groups}
    for task in REPORT_TASKS:
        part = ranked[ranked["task"].str.endswith(" " + task)]
        if part.empty:
            continue
        cons = ranking.consensus(part).set_index("entry")
        reps = ranking.tasks(part)
        columns.append((f"{task}:consensus", f"{task}: consensus [range]"))
        columns += [(f"{task}:{t.split()[0]}", f"{task}: {t.split()[0]}") for t in reps]
        for g in groups:
            mine = part[part["entry"] == g.name]["rank"].astype(float)
            c = cons["rank"].get(g.name)
            cells[g.name].append(
                Cell(None if c is None else float(c), mine.min(), mine.max(), decimals=0)
            )
            cells[g.name] += [_rank_cell(part, task=t, entry=g.name) for t in reps]
    notes = [
        "Rank (1 best, ties min) of each configuration by mean Dice per case in each "
        "replicate (rN); consensus: mean of the replicates' ranks, ties averaged, ranked; "
        "[range]: its best and worst rank over the replicates."
    ]
    rows = [entry_row(g, cells[g.name]) for g in groups]
    return ReportTable(key, title, columns, rows, notes)


def ranking_tables(run: RunResults) -> list[ReportTable]:
    """The ranking of the configurations on each evaluation set: mean-Dice ranks with
    bootstrap intervals, the other methods, the consensus; with replicates, also the
    ranks in each replicate and their consensus."""
    out = []
    for set_name, title in SET_TITLES.items():
        groups = run.replicated(set_name)
        if groups:
            key = f"ranking_replicates_{set_name}"
            out.append(replicate_ranking_table(groups, key, f"Ranking over replicates, {title}"))
        if set_name in run.evaluations:
            title = f"Ranking of the configurations, {title}"
            out.append(ranking_table(run.entries(set_name), f"ranking_{set_name}", title))
    return [t for t in out if t is not None]
