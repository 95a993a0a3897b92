"""Render report tables as Markdown, LaTeX (booktabs) and CSV (one long-format file).

Every text is data (names come from other people's files): Markdown escapes it
(`util.textsafe.md_escape`), LaTeX too (`tex_escape`), and every CSV cell is guarded against
formula injection (`util.textsafe.csv_cell`)."""

from __future__ import annotations

import csv
import io

from e2net_eval.report.tables import MEASURED, PUBLISHED, ReportTable
from e2net_eval.util.textsafe import csv_cell, md_escape

_SECTION_TITLES = {MEASURED: "Measured by e2net-eval", PUBLISHED: "Published in the paper"}


def _sections(table: ReportTable):
    for name in (MEASURED, PUBLISHED):
        rows = table.section(name)
        if rows:
            sources = sorted({r.source for r in rows})
            yield name, f"{_SECTION_TITLES[name]}: {'; '.join(sources)}", rows


def table_markdown(table: ReportTable) -> str:
    """One table: a bold section row before the measured rows and before the published rows."""
    header = ["", *[md_escape(label) for _, label in table.columns]]
    lines = [
        f"### {md_escape(table.title)}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":---"] + ["---:"] * len(table.columns)) + "|",
    ]
    for _, title, rows in _sections(table):
        lines.append(f"| **{md_escape(title)}** |" + " |" * len(table.columns))
        for r in rows:
            cells = [md_escape(r.label), *[md_escape(c.text) for c in r.cells]]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {md_escape(note)}" for note in table.notes]
    return "\n".join(lines) + "\n"


_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "∩": r"$\cap$",
    "Σ": r"$\Sigma$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "τ": r"$\tau$",
}


def tex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text."""
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in text)


def table_latex(table: ReportTable) -> str:
    """A booktabs table; measured and published rows under their own \\midrule headings."""
    ncol = len(table.columns) + 1
    lines = [
        r"\begin{table}[ht]",
        r"\centering",
        r"\small",
        rf"\caption{{{tex_escape(table.title)}}}",
        rf"\label{{tab:{table.key}}}",
        r"\begin{tabular}{l" + "r" * len(table.columns) + "}",
        r"\toprule",
        " & ".join(["", *[tex_escape(label) for _, label in table.columns]]) + r" \\",
    ]
    for _, title, rows in _sections(table):
        lines.append(r"\midrule")
        lines.append(rf"\multicolumn{{{ncol}}}{{l}}{{\emph{{{tex_escape(title)}}}}} \\")
        for r in rows:
            cells = [tex_escape(r.label), *[tex_escape(c.text) for c in r.cells]]
            lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.notes:
        lines.append(r"\par\smallskip\footnotesize " + " ".join(tex_escape(n) for n in table.notes))
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def document_latex(tables: list[ReportTable], title: str) -> str:
    """A complete document (article + booktabs) holding every table; `\\input`-able parts
    are the table environments themselves."""
    body = "\n".join(table_latex(t) for t in tables)
    return (
        "\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\usepackage{booktabs}\n"
        "\\usepackage[margin=1.5cm,landscape]{geometry}\n\\begin{document}\n"
        f"\\section*{{{tex_escape(title)}}}\n{body}\\end{{document}}\n"
    )


CSV_FIELDS = [
    "table",
    "section",
    "row",
    "column",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "text",
    "config",
    "protocol",
    "profile",
    "seed",
    "split",
    "dataset",
    "source",
]


def tables_csv(tables: list[ReportTable]) -> str:
    """Every cell of every table, one line each, with its provenance (long format)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for t in tables:
        for r in t.rows:
            for (key, _), c in zip(t.columns, r.cells, strict=True):
                row = {
                    "table": t.key,
                    "section": r.section,
                    "row": r.label,
                    "column": key,
                    "value": "" if c.value is None else repr(float(c.value)),
                    "ci_low": "" if c.low is None else repr(float(c.low)),
                    "ci_high": "" if c.high is None else repr(float(c.high)),
                    "n": "" if c.n is None else c.n,
                    "text": c.text,
                    "config": r.meta.get("config", r.meta.get("b", "")),
                    "protocol": r.meta.get("protocol", ""),
                    "profile": r.meta.get("profile", ""),
                    "seed": r.meta.get("seed", ""),
                    "split": r.meta.get("split", ""),
                    "dataset": r.meta.get("dataset", ""),
                    "source": r.source,
                }
                writer.writerow({k: csv_cell(v) for k, v in row.items()})
    return buf.getvalue()
