"""`e2net-eval rank NAME=PATH ... -o OUT`: evaluations to `ranking`'s long frame, its frames to
the CSVs, ``ranking.md``/``.tex``/``.html`` and ``figures/*.png`` (all or nothing). See
docs/reports.md, "rank".
"""

from __future__ import annotations

import base64
import html
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from e2net_eval.errors import InputError
from e2net_eval.metrics.registry import METRICS, REGIONS, Metric
from e2net_eval.report import ranking
from e2net_eval.report.compare import aspects_text, check_comparable
from e2net_eval.report.tables import tex_escape
from e2net_eval.rundir import SETS, eval_summaries, is_ablation_run
from e2net_eval.scores import Evaluation, read_evaluation
from e2net_eval.util.outdir import result_folder
from e2net_eval.util.textsafe import csv_cell, md_escape

log = logging.getLogger(__name__)

KIND = "ranking"
#: The frames of a `Ranked` written as ``<name>.csv``, in writing order.
CSV_FRAMES = ("rankings", "bootstrap", "consensus", "significance", "robustness", "stability")
#: Metrics ranked when no --metric is given (per case, both regions).
DEFAULT_METRICS = ("dice", "hd95")


@dataclass
class Ranked:
    """Everything a ranking writes (frames of `ranking`), plus how it was made."""

    frame: pd.DataFrame
    higher: dict[str, bool]
    rankings: pd.DataFrame
    significance: pd.DataFrame
    bootstrap: pd.DataFrame
    draws: dict[tuple[str, str], pd.DataFrame]
    consensus: pd.DataFrame
    robustness: pd.DataFrame
    stability: pd.DataFrame
    lines: list[str] = field(default_factory=list)


# -- entries -----------------------------------------------------------------------------------
def _ablation_entries(
    name: str, path: Path, set_name: str | None, prefix: bool
) -> list[tuple[str, Evaluation]]:
    found = eval_summaries(path)
    sets = [s for s in SETS if any(k[0] == s for k in found)]
    if not sets:
        raise InputError("an ablation run without evaluations (RUN/eval/<set>/<config>)", path=path)
    if set_name is None and len(sets) > 1:
        raise InputError(
            f"the run has several evaluation sets ({', '.join(sets)}): pick one with --set",
            path=path,
        )
    chosen = set_name or sets[0]
    if chosen not in sets:
        raise InputError(f"no evaluations on set {chosen!r} (found: {', '.join(sets)})", path=path)
    return [
        (f"{name}/{cfg}" if prefix else cfg, read_evaluation(p))
        for (s, cfg), p in sorted(found.items())
        if s == chosen
    ]


def load_entries(
    specs: Sequence[tuple[str, Path]], set_name: str | None = None
) -> list[tuple[str, Evaluation]]:
    """(entry name, evaluation) of every NAME=PATH; an ablation run gives one per config."""
    out: list[tuple[str, Evaluation]] = []
    for name, path in specs:
        if path.is_dir() and is_ablation_run(path):
            out += _ablation_entries(name, path, set_name, prefix=len(specs) > 1)
        else:
            out.append((name, read_evaluation(path)))
    names = [n for n, _ in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"entry name {twice[0]!r} given twice")
    if len(out) < 2:
        raise InputError("a ranking needs at least two entries (NAME=PATH ...)")
    return out


# -- tasks -------------------------------------------------------------------------------------
def _case_metric(name: str) -> Metric:
    metric = METRICS.get(name)
    if metric is None or metric.level != "case" or not metric.csv:
        known = ", ".join(m.name for m in METRICS.values() if m.level == "case")
        raise InputError(f"unknown per-case metric {name!r} (known: {known})")
    return metric


def parse_tasks(specs: Sequence[str]) -> list[tuple[str, Metric]]:
    """``--metric`` values (``dice`` for every region, ``tumour/dice`` for one) ->
    (region, metric) pairs; default: `DEFAULT_METRICS` in every region."""
    out: list[tuple[str, Metric]] = []
    for spec in specs or DEFAULT_METRICS:
        region, sep, name = spec.rpartition("/")
        if sep and region not in REGIONS:
            raise InputError(
                f"--metric {spec!r}: unknown region {region!r} (one of {', '.join(REGIONS)})"
            )
        metric = _case_metric(name)
        for r in [region] if sep else list(REGIONS):
            if (r, metric) not in out:
                out.append((r, metric))
    return out


def long_frame(
    entries: Sequence[tuple[str, Evaluation]], tasks: Sequence[tuple[str, Metric]]
) -> tuple[pd.DataFrame, dict[str, bool]]:
    """The engine's frame (``task, entry, case, value``) and each task's direction.
    A task no entry has a column for is left out (say, HD95 of an evaluation run without
    the peer metrics); none left is bad input."""
    parts, higher = [], {}
    for region, metric in tasks:
        task = f"{region}/{metric.name}"
        for name, ev in entries:
            rows = ev.per_case[ev.per_case["region"] == region]
            if metric.csv not in rows.columns:
                continue
            values = pd.to_numeric(rows[metric.csv].astype("Float64"), errors="coerce")
            if metric.absolute:  # a signed metric (RVD): its magnitude is what counts
                values = values.abs()
            cases = rows["case"].astype(str).to_numpy()
            values = values.to_numpy(dtype=float, na_value=math.nan)
            parts.append(
                pd.DataFrame({"task": task, "entry": name, "case": cases, "value": values})
            )
            higher[task] = bool(metric.higher_is_better)
    if not parts:
        raise InputError("none of the chosen metrics is in the entries' per_case.csv")
    return pd.concat(parts, ignore_index=True), higher


@dataclass(frozen=True)
class Request:
    """What `e2net-eval rank` was asked (CLI options, one place); `rank_frame` reads the
    ranking and bootstrap settings."""

    specs: tuple[tuple[str, Path], ...] = ()
    metrics: tuple[str, ...] = ()
    opts: ranking.Options = ranking.Options()
    n_boot: int = 1000
    seed: int = 0
    jobs: int = 1
    challenger: bool = False
    allow_mixed: bool = False
    set_name: str | None = None
    figures: bool = True


# -- ranking -----------------------------------------------------------------------------------
def rank_frame(frame: pd.DataFrame, higher: dict[str, bool], req: Request) -> Ranked:
    """Every frame of a ranking of `frame` as `req` says (the library entry point)."""
    opts = req.opts
    prepared = ranking.prepare(frame, higher, opts)
    ranked = ranking.rankings(prepared, higher, opts)
    boot, draws = ranking.bootstrap(
        prepared, higher, opts, req.n_boot, req.seed, req.jobs, req.challenger
    )
    return Ranked(
        prepared,
        higher,
        ranked,
        ranking.significance(prepared, higher, opts),
        boot,
        draws,
        ranking.consensus(ranked),
        ranking.robustness(ranked),
        ranking.stability_across_tasks(ranked),
        _missing_lines(frame, prepared, opts.missing),
    )


def _missing_lines(raw: pd.DataFrame, prepared: pd.DataFrame, policy: str) -> list[str]:
    """What the missing-value policy did, per task (never silent)."""
    full = ranking.complete(ranking.check_frame(raw, {t: True for t in raw["task"].unique()}))
    out = []
    for task, rows in full.groupby("task", sort=False):
        n = int(rows["value"].isna().sum())
        if n:
            what = {"drop": "dropped", "worst": "set to the task's worst value"}
            what = what.get(policy, f"set to {policy}")
            out.append(f"{task}: {n} missing or undefined value(s) {what} (--missing {policy})")
    return out


# -- writing -----------------------------------------------------------------------------------
def cell(value: object, kind: str = "md") -> str:
    """One table cell as text, the one place cells are made (``md``: `md_escape`;
    ``csv``: `csv_cell`, the spreadsheet-formula guard; ``text``: as is)."""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    text = str(value).replace("\n", " ")
    if kind == "md":
        return md_escape(text)
    if kind == "csv":
        return str(csv_cell(text))
    return text


def csv_text(frame: pd.DataFrame) -> str:
    """A frame as CSV with every text cell through `cell` (numbers in full precision)."""
    safe = frame.copy()
    for col in safe.columns:
        if safe[col].dtype == object:
            safe[col] = safe[col].map(lambda v: cell(v, "csv"))
    return safe.to_csv(index=False)


def markdown_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def latex_text(value: object) -> str:
    """A cell's text with LaTeX's special characters escaped."""
    return tex_escape(cell(value, "text"), symbols=False)


def latex_table(frame: pd.DataFrame) -> str:
    rows = [" & ".join(latex_text(c) for c in frame.columns) + r" \\ \hline"]
    rows += [" & ".join(map(latex_text, row)) + r" \\" for row in frame.itertuples(index=False)]
    spec = "l" * len(frame.columns)
    return f"\\begin{{tabular}}{{{spec}}}\n" + "\n".join(rows) + "\n\\end{tabular}\n"


def html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(cell(c, 'text'))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(v, 'text'))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _value_rank(r: Ranked) -> pd.DataFrame:
    """One row per task and entry: ``value (rank)`` of every method."""
    t = r.rankings.copy()
    t["shown"] = [f"{cell(v)} ({rk})" for v, rk in zip(t["value"], t["rank"], strict=True)]
    w = t.pivot(index=["task", "entry"], columns="method", values="shown")
    w = w.reindex(index=pd.MultiIndex.from_frame(t[["task", "entry"]].drop_duplicates()))
    return w[list(dict.fromkeys(t["method"]))].reset_index()


def _boot_table(r: Ranked) -> pd.DataFrame:
    b = r.bootstrap
    shown = [
        f"{cell(m)} [{cell(lo)}, {cell(hi)}]"
        for m, lo, hi in zip(b["rank_median"], b["rank_q025"], b["rank_q975"], strict=True)
    ]
    return b[["task", "method", "entry"]].assign(**{"bootstrap rank: median [2.5%, 97.5%]": shown})


def _tau_table(r: Ranked) -> pd.DataFrame:
    cols = ["task", "method", "tau_mean", "tau_median", "tau_q025", "tau_q975"]
    return r.bootstrap[cols].drop_duplicates(["task", "method"]).reset_index(drop=True)


def _significance_tables(r: Ranked) -> list[tuple[str, pd.DataFrame]]:
    out = []
    for task, part in r.significance.groupby("task", sort=False):
        w = part.pivot(index="entry", columns="other", values="significant")
        order = list(dict.fromkeys(part["entry"]))
        w = w.reindex(index=order, columns=order)
        w = w.map(lambda v: "" if pd.isna(v) else ("yes" if v else "."))
        out.append((f"Significance {task}: row better than column", w.reset_index()))
    return out


def sections(r: Ranked, alpha: float, p_adjust: str) -> list[tuple[str, pd.DataFrame]]:
    """(title, table) of every table the ranking shows, in order."""
    return [
        ("Rankings: value (rank) per task and method", _value_rank(r)),
        ("Consensus across tasks (mean within-task rank, ties averaged)", r.consensus),
        ("Bootstrap ranks", _boot_table(r)),
        ("Kendall's tau-b between the full-data ranking and the bootstrap rankings", _tau_table(r)),
        ("Robustness across methods: Kendall's tau-b between two methods' rankings", r.robustness),
        ("Stability across tasks: an entry's ranks over the tasks", r.stability),
        *[
            (f"{t} (one-sided Wilcoxon, alpha {alpha}, {p_adjust})", w)
            for t, w in _significance_tables(r)
        ],
    ]


def render(
    r: Ranked, lines: list[str], notes: list[str], figures, alpha: float, p_adjust: str
) -> dict[str, bytes]:
    """ranking.md, ranking.tex, ranking.html and the CSVs, by file name."""
    parts = sections(r, alpha, p_adjust)
    md = ["# e2net-eval ranking", "", *[f"- {cell(x)}" for x in lines], ""]
    tex = ["\\documentclass{article}", "\\begin{document}"]
    page = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>e2net-eval ranking</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}img{max-width:100%}</style></head><body>",
        "<h1>e2net-eval ranking</h1><ul>",
        *[f"<li>{html.escape(x)}</li>" for x in lines],
        "</ul>",
    ]
    for title, table in parts:
        md += [f"## {cell(title)}", "", markdown_table(table), ""]
        tex += [f"\\section*{{{latex_text(title)}}}", latex_table(table)]
        page += [f"<h2>{html.escape(title)}</h2>", html_table(table)]
    for stem, caption, png in figures:
        md += [f"![{cell(caption)}](figures/{stem}.png)", "", f"*{cell(caption)}*", ""]
        data = base64.b64encode(png).decode("ascii")
        page += [
            f"<h2>{html.escape(caption)}</h2><img alt='{html.escape(stem)}' src='data:image/png;base64,{data}'>"
        ]
    md += ["## Notes", "", *[f"- {cell(n)}" for n in notes], ""]
    tex += ["\\section*{Notes}", *[latex_text(n) + "\n" for n in notes], "\\end{document}", ""]
    page += ["<h2>Notes</h2><ul>", *[f"<li>{html.escape(n)}</li>" for n in notes]]
    page.append("</ul></body></html>")
    files = {f"{name}.csv": csv_text(getattr(r, name)) for name in CSV_FRAMES}
    files |= {"ranking.md": md, "ranking.tex": tex, "ranking.html": page}
    out = {k: (v if isinstance(v, str) else "\n".join(v)).encode("utf-8") for k, v in files.items()}
    out.update({f"figures/{stem}.png": png for stem, _, png in figures})
    return out


def rank_entries(req: Request) -> tuple[Ranked, list[str]]:
    """Read the entries, check they can be ranked together, rank them; plus the lines
    saying what was ranked."""
    entries = load_entries(req.specs, req.set_name)
    aspects = check_comparable(entries, req.allow_mixed, "rank them anyway")
    r = rank_frame(*long_frame(entries, parse_tasks(req.metrics)), req)
    lines = [f"Entry {n}: {ev.path.resolve()} ({len(ev.case_ids())} cases)" for n, ev in entries]
    lines += [
        "Tasks: "
        + ", ".join(f"{t} ({'higher' if h else 'lower'} is better)" for t, h in r.higher.items()),
        f"Bootstrap: {req.n_boot} draws over cases, seed {req.seed}"
        + (", challengeR-compatible (--challenger-compatible)" if req.challenger else ""),
        f"Test-then-rank: one-sided Wilcoxon signed-rank, alpha {req.opts.alpha}, "
        f"p-value adjustment {req.opts.p_adjust} over the n(n-1) ordered pairs of a task",
    ]
    if aspects:
        lines.append(f"MIXED (--allow-mixed): {aspects_text(aspects)}")
    return r, lines + r.lines


NOTES = [
    "Ties get the smallest rank (ties 'min', as challengeR). Rank 1 is best.",
    "mean / median: aggregate per entry over the cases, then rank; rank_then_aggregate: rank "
    "the entries within each case, mean rank per entry, rank that; test_then_rank: value = "
    "number of entries this one is significantly better than, ranked (more is better).",
    "Consensus: mean over tasks of the within-task ranks with ties averaged, ranked "
    "(challengeR consensus(method='euclidean')).",
    "Bootstrap: cases drawn with replacement per task; rank quantiles are R's type 7; "
    "Kendall's tau is tau-b. A case drawn k times counts as k cases (challengeR ranks the "
    "copies together and tests them once: --challenger-compatible).",
]


def write_ranking(req: Request, out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Rank and write every file into `out_dir` (the output-folder policy: checked first,
    all or nothing)."""
    out_dir = Path(out_dir)
    with result_folder(
        out_dir, kind=KIND, inputs=[p for _, p in req.specs], overwrite=overwrite
    ) as tmp:
        r, lines = rank_entries(req)
        figures = []
        if req.figures:
            from e2net_eval.report import ranking_figures  # matplotlib: only when drawing

            figures = ranking_figures.all_figures(r)
        files = render(r, lines, NOTES, figures, req.opts.alpha, req.opts.p_adjust)
        (tmp / "figures").mkdir()
        for rel, data in files.items():
            (tmp / rel).write_bytes(data)
    log.info("ranking written to %s", out_dir)
    return out_dir
