"""The table engine of `report` and `compare`: cells, rows and tables rendered to Markdown,
LaTeX (booktabs), CSV (one long file) and HTML. Every text is data: each format escapes it
(`util.textsafe`), CSV cells are guarded against formula injection.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from html import escape
from typing import Any

from e2net_eval.report.entries import Entry
from e2net_eval.util.textsafe import csv_cell, md_escape

MEASURED, PUBLISHED = "measured", "published"
_SECTION_TITLES = {MEASURED: "Measured by e2net-eval", PUBLISHED: "Published in the paper"}


@dataclass
class Cell:
    """One number: value in the table's unit (Dice in %), interval, n; None when missing."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int | None = None
    decimals: int = 1

    @property
    def text(self) -> str:
        if self.value is None:
            return "-"
        d = self.decimals
        if self.low is None or self.high is None:
            return f"{self.value:.{d}f}"
        return f"{self.value:.{d}f} [{self.low:.{d}f}, {self.high:.{d}f}]"


@dataclass
class Row:
    section: str  # MEASURED or PUBLISHED
    label: str
    cells: list[Cell]
    source: str  # provenance: protocol/profile/seed/split, or the published split
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReportTable:
    key: str
    title: str
    columns: list[tuple[str, str]]  # (key, label)
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    def section(self, name: str) -> list[Row]:
        return [r for r in self.rows if r.section == name]


def figure_cell(entry: Entry, key: str, scale: float = 1.0, decimals: int = 1) -> Cell:
    """The set figure at `key` times `scale`, with its bootstrap interval."""
    value = entry.value(key)
    if value is None:
        return Cell(None, decimals=decimals)
    ci = entry.interval(key)
    if ci is None or ci.low is None:
        return Cell(scale * value, n=None if ci is None else ci.n, decimals=decimals)
    return Cell(scale * value, scale * ci.low, scale * ci.high, ci.n, decimals)


def entry_row(entry: Any, cells: list[Cell]) -> Row:
    """A measured row of an `Entry` (or `Replicated`): its label, provenance and meta."""
    return Row(MEASURED, entry.label, cells, entry.source, dict(entry.meta))


def tumour_figure(summary_key: str) -> bool:
    """Whether a summary key is a tumour figure ('-' for a model without tumour output):
    ``regions.tumour.*`` and the set sections (tumour burden, detection, lesions)."""
    parts = summary_key.split(".")
    return parts[0] != "regions" or (len(parts) > 1 and parts[1] == "tumour")


# -- rendering ------------------------------------------------------------------------------
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


_TEX_ASCII = {
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
}
_TEX_SPECIAL = {
    **_TEX_ASCII,
    "∩": r"$\cap$",
    "Σ": r"$\Sigma$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "τ": r"$\tau$",
}


def tex_escape(text: str, symbols: bool = True) -> str:
    """Escape LaTeX's special characters in plain text (with `symbols`, also write the
    report's arrows and Greek letters in math mode)."""
    table = _TEX_SPECIAL if symbols else _TEX_ASCII
    return "".join(table.get(ch, ch) for ch in text)


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


#: The provenance columns of tables.csv, read from a row's meta.
_META_FIELDS = ["config", "protocol", "profile", "seed", "split", "dataset"]
CSV_FIELDS = ["table", "section", "row", "column", "value", "ci_low", "ci_high", "n", "text"]
CSV_FIELDS += [*_META_FIELDS, "source"]


def _number(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def tables_csv(tables: list[ReportTable]) -> str:
    """Every cell of every table, one line each, with its provenance (long format)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for t in tables:
        for r in t.rows:
            meta = [r.meta.get("config", r.meta.get("b", ""))]
            meta += [r.meta.get(k, "") for k in _META_FIELDS[1:]]
            for (key, _), c in zip(t.columns, r.cells, strict=True):
                numbers = [_number(c.value), _number(c.low), _number(c.high)]
                row = [t.key, r.section, r.label, key, *numbers, "" if c.n is None else c.n]
                writer.writerow([csv_cell(v) for v in [*row, c.text, *meta, r.source]])
    return buf.getvalue()


def _cell_html(text: str) -> str:
    """A cell's value and its interval, each kept on one line (a narrow column breaks
    between them, never inside "[low, high]")."""
    value, sep, interval = text.partition(" [")
    if not sep:
        return f'<span class="v">{escape(text)}</span>'
    return f'<span class="v">{escape(value)}</span> <span class="ci">[{escape(interval)}</span>'


def table_html(table: ReportTable) -> str:
    head = "".join(f"<th>{escape(label)}</th>" for _, label in table.columns)
    body = []
    for name, title, rows in _sections(table):
        body.append(
            f'<tr class="section"><td colspan="{len(table.columns) + 1}">{escape(title)}</td></tr>'
        )
        for r in rows:
            cells = "".join(f"<td>{_cell_html(c.text)}</td>" for c in r.cells)
            tip = escape(r.meta.get("citation", r.source))
            body.append(f'<tr class="{name}" title="{tip}"><td>{escape(r.label)}</td>{cells}</tr>')
    notes = "".join(f"<li>{escape(n)}</li>" for n in table.notes)
    return (
        f'<h3 id="{escape(table.key)}">{escape(table.title)}</h3>\n'
        f"<table><thead><tr><th></th>{head}</tr></thead><tbody>\n"
        + "\n".join(body)
        + f'\n</tbody></table>\n<ul class="notes">{notes}</ul>\n'
    )
