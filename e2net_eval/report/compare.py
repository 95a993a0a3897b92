"""`e2net-eval compare NAME=PATH [NAME=PATH ...] -o OUT`: anyone's predictions side by side,
through the report's engine. What can be compared and what is written: docs/reports.md,
"compare".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from e2net_eval.errors import InputError
from e2net_eval.report.comparable import (
    listed,
    protocol_of,
    reference_cases,
    same_reference,
    scoring_differences,
    scoring_options,
)
from e2net_eval.report.document import Document, write_document
from e2net_eval.report.entries import Entry
from e2net_eval.report.leaderboards import TABLES, load_table
from e2net_eval.report.metric_tables import metrics_table, peer_table
from e2net_eval.report.paired import paired_notes, paired_table
from e2net_eval.report.paper_tables import estimate_notes, leaderboard_table
from e2net_eval.report.tables import ReportTable
from e2net_eval.rundir import is_ablation_run
from e2net_eval.scores import Evaluation, read_evaluation

TITLE = "e2net-eval comparison"
REFERENCE, PROTOCOL, SCORING = "reference set", "protocol", "scoring options"
_VOLUME_RTOL = 1e-6


# -- arguments -----------------------------------------------------------------------------
def parse_spec(text: str) -> tuple[str, Path]:
    """``NAME=PATH`` -> (NAME, PATH); a bare PATH is named after its folder."""
    name, sep, path = text.partition("=")
    if not sep:
        p = Path(text)
        return (p.parent.name if p.suffix == ".json" else p.name) or text, p
    if not name.strip() or not path:
        raise InputError(f"expected NAME=PATH, got {text!r}")
    return name.strip(), Path(path)


def load_evaluations(specs: Sequence[tuple[str, Path]]) -> list[tuple[str, Evaluation]]:
    """Read every entry (an `evaluate` output folder or a summary.json)."""
    if not specs:
        raise InputError("compare needs at least one NAME=PATH")
    seen: set[str] = set()
    out = []
    for name, path in specs:
        if name in seen:
            raise InputError(f"entry name {name!r} given twice")
        seen.add(name)
        if path.is_dir() and is_ablation_run(path):
            raise InputError(
                "an ablation run directory: give one of its RUN/eval/<set>/<config> folders "
                "(or use `e2net-eval report`)",
                path=path,
            )
        out.append((name, read_evaluation(path)))
    return out


# -- what differs between entries ------------------------------------------------------------
def _reference_difference(a: tuple[str, Evaluation], b: tuple[str, Evaluation]) -> str | None:
    """How b's reference set differs from a's: other cases, other label voxel counts or
    other voxel sizes (volumes) for a common case; None when they agree."""
    (na, ea), (nb, eb) = a, b
    ca, cb = ea.case_ids(), eb.case_ids()
    if set(ca) != set(cb):
        parts = [f"{na}: {len(ca)} cases, {nb}: {len(cb)} cases"]
        for name, only in (
            (na, [c for c in ca if c not in cb]),
            (nb, [c for c in cb if c not in ca]),
        ):
            if only:
                parts.append(f"only in {name}: {listed(only)}")
        return "; ".join(parts)
    keys = ["case", "region"]
    cols = ["ref_voxels", "ref_volume_ml"]
    merged = ea.per_case[keys + cols].merge(
        eb.per_case[keys + cols], on=keys, suffixes=("_a", "_b")
    )
    for _, row in merged.iterrows():
        va, vb = row["ref_voxels_a"], row["ref_voxels_b"]
        if va is not pd.NA and vb is not pd.NA and int(va) != int(vb):
            return (
                f"the reference labels of case {row['case']} differ ({row['region']} voxels "
                f"{na}: {int(va)}, {nb}: {int(vb)})"
            )
        ma, mb = row["ref_volume_ml_a"], row["ref_volume_ml_b"]
        if ma is not pd.NA and mb is not pd.NA and not math.isclose(ma, mb, rel_tol=_VOLUME_RTOL):
            return (
                f"the voxel size of case {row['case']} differs ({row['region']} volume "
                f"{na}: {float(ma):.4g} ml, {nb}: {float(mb):.4g} ml)"
            )
    return _digest_difference(a, b)


def _digest_difference(a: tuple[str, Evaluation], b: tuple[str, Evaluation]) -> str | None:
    """A case whose reference labels have another digest in b than in a (when both have
    one: ``metric_per_case[].reference_sha256``)."""
    (na, ea), (nb, eb) = a, b
    ca, cb = reference_cases(ea.summary) or {}, reference_cases(eb.summary) or {}
    for case in ca:
        if case in cb and not same_reference(ca[case], cb[case]):
            return f"the reference labels of case {case} differ ({na} and {nb}: other digest)"
    return None


def differences(evaluations: Sequence[tuple[str, Evaluation]]) -> dict[str, str]:
    """What differs between the entries (aspect -> the first difference found, against the
    first entry); empty when they can be compared as they are."""
    found: dict[str, str] = {}
    n1, first = evaluations[0]
    p1, s1 = protocol_of(first.meta), scoring_options(first.meta)
    for name, other in evaluations[1:]:
        if REFERENCE not in found:
            diff = _reference_difference(evaluations[0], (name, other))
            if diff:
                found[REFERENCE] = diff
        p2, s2 = protocol_of(other.meta), scoring_options(other.meta)
        if PROTOCOL not in found and p1 != p2:
            found[PROTOCOL] = f"{n1}: {p1!r}, {name}: {p2!r}"
        keys = scoring_differences(s1, s2)
        if SCORING not in found and keys:
            found[SCORING] = ", ".join(f"{k} {n1}: {s1[k]!r}, {name}: {s2[k]!r}" for k in keys)
    return found


def aspects_text(aspects: dict[str, str]) -> str:
    return "; ".join(f"{k} ({v})" for k, v in aspects.items())


def check_comparable(
    evaluations: Sequence[tuple[str, Evaluation]], allow_mixed: bool, hint: str
) -> dict[str, str]:
    """`differences`; InputError naming them unless `allow_mixed` (`hint`: what
    --allow-mixed does)."""
    aspects = differences(evaluations)
    if aspects and not allow_mixed:
        raise InputError(f"entries differ in {aspects_text(aspects)}; pass --allow-mixed to {hint}")
    return aspects


def _reference_text(ev: Evaluation) -> str:
    meta = ev.meta
    root = Path(str(meta.get("reference_root") or "?")).name or "?"
    labels_only = ", labels only" if meta.get("reference_images") is False else ""
    return f"reference {root} ({len(ev.case_ids())} cases{labels_only})"


def _row_facts(ev: Evaluation, evaluations: Sequence[tuple[str, Evaluation]], aspects) -> str:
    """What is particular about one entry, for the aspects that differ (short: the reference
    by its case count, and its folder only when the folders differ too)."""
    facts = []
    if PROTOCOL in aspects:
        facts.append(f"protocol {protocol_of(ev.meta)}")
    if REFERENCE in aspects:
        roots = {Path(str(e.meta.get("reference_root"))).name for _, e in evaluations}
        root = Path(str(ev.meta.get("reference_root"))).name
        facts.append(f"{root + ', ' if len(roots) > 1 else ''}{len(ev.case_ids())} cases")
    if SCORING in aspects:
        opts, first = scoring_options(ev.meta), scoring_options(evaluations[0][1].meta)
        keys = [k for k in scoring_differences(opts, first) if "rules" not in k]
        keys = keys or [k for k in opts if "rules" not in k]
        facts.append(", ".join(f"{k} {opts[k]}" for k in keys) or "scoring rules differ")
    return "; ".join(facts)


# -- the document -------------------------------------------------------------------------
def _default_table(evaluations: Sequence[tuple[str, Evaluation]]) -> int:
    layouts = {ev.meta.get("reference_layout") for _, ev in evaluations}
    return 2 if layouts == {"ircadb"} else 1


def make_entries(
    evaluations: Sequence[tuple[str, Evaluation]], aspects: Sequence[str], baseline: str | None
) -> list[Entry]:
    common = f"protocol {protocol_of(evaluations[0][1].meta)}, {_reference_text(evaluations[0][1])}"
    entries = []
    for name, ev in evaluations:
        short = name + (" (baseline)" if name == baseline else "")
        label, source = short, common
        if aspects:
            label = f"{short} [{_row_facts(ev, evaluations, aspects)}]"
            source = f"protocol {protocol_of(ev.meta)}, {_reference_text(ev)}"
        meta = {
            "config": name,
            "protocol": protocol_of(ev.meta),
            "split": _reference_text(ev),
            "dataset": str(ev.meta.get("reference_layout") or ""),
        }
        entries.append(Entry(name, label, ev, source, meta, short=short))
    return entries


def _lines(
    entries: Sequence[Entry], aspects: dict[str, str], baseline: str | None, table: int
) -> list[str]:
    lines = []
    for e in entries:
        meta = e.evaluation.meta
        abl = meta.get("ablation")
        run = ""
        if isinstance(abl, dict) and abl:
            run = f"; ablation: protocol {abl.get('protocol')}, profile {abl.get('profile')}, "
            run += f"seed {abl.get('seed')}"
        lines.append(
            f"Entry {e.name}: {e.evaluation.path.resolve()} ({len(e.case_ids())} cases; predictions "
            f"{meta.get('prediction_dir', '?')}; e2net-eval {meta.get('version', '?')}, "
            f"git {meta.get('git_commit') or 'unknown'}{run})"
        )
        missing = e.summary.get("missing_predictions") or []
        if missing:
            lines.append(
                f"Entry {e.name}: {len(missing)} case(s) had no prediction file and were scored "
                f"as empty: {', '.join(map(str, missing[:10]))}"
            )
    first = entries[0].evaluation
    if REFERENCE not in aspects:
        lines.append(
            f"Reference: {first.meta.get('reference_root', '?')} "
            f"({first.meta.get('reference_layout', '?')}"
            f"{', labels only' if first.meta.get('reference_images') is False else ''}; "
            f"{len(first.case_ids())} cases)"
        )
    if PROTOCOL not in aspects:
        lines.append(f"Protocol: {protocol_of(first.meta)}")
    if SCORING not in aspects:
        opts = scoring_options(first.meta)
        settings = ", ".join(f"{k} {v}" for k, v in opts.items() if "rules" not in k)
        rules = "; ".join(str(v) for k, v in opts.items() if "rules" in k)
        lines.append(
            f"Scoring: {settings or 'unknown (summaries without scoring metadata)'}"
            + (f"; {rules}" if rules else "")
        )
    if aspects:
        lines.append(
            f"MIXED (--allow-mixed): the entries differ in {aspects_text(aspects)}. Each row "
            "names what is particular to it; paired tests use the cases both entries have."
        )
    if len(entries) > 1:
        lines.append(
            f"Paired tests: each entry against the baseline {baseline}"
            if baseline
            else "Paired tests: every pair of entries"
        )
    lines.append(f"Published rows: the paper's Table {table} ({load_table(table)['split']})")
    return lines


def _notes(table: int) -> list[str]:
    published = load_table(table)
    return [
        *estimate_notes(),
        f"Published rows (Table {table}): {published['split']}. {published['split_note']} "
        "Measured rows are scored on the reference set above: not the same cases, so the "
        "published rows are shown for orientation, not as a like-for-like comparison.",
    ]


def comparison_tables(
    entries: Sequence[Entry], table: int, baseline: str | None
) -> list[ReportTable]:
    """The leaderboard table, the paired tests and the every-metric tables."""
    published = load_table(table)
    title = f"Table {table} style: the entries beside the paper's rows ({published['split']})"
    tables = [leaderboard_table(table, entries, f"table{table}", title)]
    if len(entries) > 1:
        base = next((e for e in entries if e.name == baseline), None)
        pairs = [(base, e) for e in entries if e is not base] if base else []
        pairs = pairs or [(a, b) for i, a in enumerate(entries) for b in entries[i + 1 :]]
        n = max(len(e.case_ids()) for e in entries)
        notes = paired_notes(n, holm=True, what="entries")
        title = "Paired comparisons on the cases both entries have"
        tables.append(
            paired_table("paired", title, pairs, published["columns"], holm=True, notes=notes)
        )
    noted = False  # the first of the every-metric tables says what they show
    for key, title, regions, levels in (
        ("metrics_liver", "The LiTS score set: liver", ["liver"], ["region", "case"]),
        ("metrics_tumour", "The LiTS score set: tumour", ["tumour"], ["region", "case"]),
        ("metrics_lesions", "Tumour burden and lesion detection", ["tumour"], ["set"]),
    ):
        t = metrics_table(key, title, entries, regions, levels)
        if t is not None:
            t.notes, noted = ([] if noted else t.notes), True
        tables.append(t)
    where = _reference_text(entries[0].evaluation)
    # the metrics other tools report, as `report` shows them
    tables += [peer_table(entries, kind, f"peer_{kind}", where) for kind in ("surface", "lesion")]
    return [t for t in tables if t is not None]


def comparison_figures(entries: Sequence[Entry], title: str) -> list[tuple[str, str, bytes]]:
    from e2net_eval.report import figures as figs  # matplotlib: only when drawing

    dice = (
        "Per-case Dice per entry (box: quartiles, triangle: mean, dots: cases, "
        "grey lines join the same case)"
    )
    out = [
        ("dice", dice, figs.dice_distributions(list(entries), title, paired=True)),
        (
            "burden",
            "Tumour burden predicted vs reference",
            figs.burden_scatter(list(entries), title),
        ),
    ]
    return [f for f in out if f[2]]


def compare_document(
    specs: Sequence[tuple[str, Path]],
    *,
    table: int | None = None,
    baseline: str | None = None,
    allow_mixed: bool = False,
) -> Document:
    """Read the entries, check they can be compared and build the comparison."""
    evaluations = load_evaluations(specs)
    names = [n for n, _ in evaluations]
    if baseline is not None and baseline not in names:
        raise InputError(f"--baseline {baseline!r} is not one of the entries: {', '.join(names)}")
    if table is not None and table not in TABLES:
        raise InputError(f"--table must be one of {TABLES}, got {table}")
    hint = "compare them anyway (rows then say what differs)"
    aspects = check_comparable(evaluations, allow_mixed, hint)
    number = table or _default_table(evaluations)
    entries = make_entries(evaluations, list(aspects), baseline)
    title = entries[0].source if not aspects else "entries differ: " + ", ".join(aspects)
    return Document(
        TITLE,
        _lines(entries, aspects, baseline, number),
        comparison_tables(entries, number, baseline),
        comparison_figures(entries, title),
        _notes(number),
    )


def write_comparison(
    specs: Sequence[tuple[str, Path]],
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    **options: Any,
) -> dict[str, Path]:
    """Build the comparison and write it (Markdown, LaTeX, CSV, HTML) into `out_dir`.

    `out_dir` follows the output-folder policy (`document.write_document`): never an entry
    or a folder holding one; a non-empty one only with `overwrite`, and only a comparison
    e2net-eval wrote."""
    return write_document(
        lambda: compare_document(specs, **options),
        out_dir,
        kind="comparison",
        inputs=[path for _, path in specs],
        overwrite=overwrite,
    )
