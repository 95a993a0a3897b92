"""One report document (title, description, tables, figures, notes) and its one writer:
`render_document` makes the bytes in memory, `write_document` alone touches the output
folder (`util.outdir.result_folder`: checked, locked, swapped in whole).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from e2net_eval.report.tables import (
    ReportTable,
    document_latex,
    table_html,
    table_markdown,
    tables_csv,
)
from e2net_eval.util.outdir import result_folder
from e2net_eval.util.textsafe import md_escape

log = logging.getLogger(__name__)

#: Format -> file name inside the output folder (figures go to ``figures/<stem>.png``).
FILES = {
    "markdown": "report.md",
    "latex": "report.tex",
    "csv": "tables.csv",
    "html": "report.html",
}

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 0.3em;font-size:0.9em}
th,td{padding:0.25em 0.7em;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{border-bottom:2px solid #333}
tr.section td{font-weight:600;text-align:left;border-bottom:1px solid #333;padding-top:0.8em}
tr.measured td{background:#eef6ff}
tr.published td{background:#f7f7f7;color:#444}
.notes{font-size:0.85em;color:#444}
figure{display:inline-block;margin:0.5em 1em 1em 0;vertical-align:top;max-width:100%}
figure img{max-width:100%;height:auto}
figcaption{font-size:0.85em;color:#444;max-width:560px}
code{background:#f2f2f2;padding:0 0.2em}
.v,.ci{white-space:nowrap}
.ci{color:#555;font-size:0.92em}
"""


@dataclass
class Document:
    """What a report page shows; `figures` are (file stem, caption, PNG bytes)."""

    title: str
    lines: list[str]
    tables: list[ReportTable]
    figures: list[tuple[str, str, bytes]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def render_document(doc: Document) -> dict[str, bytes]:
    """Every file of the document by its path relative to the output folder."""
    md = [f"# {md_escape(doc.title)}", "", *[f"- {md_escape(x)}" for x in doc.lines], ""]
    md += [table_markdown(t) for t in doc.tables]
    if doc.figures:
        md += ["## Figures", ""]
        md += [
            f"![{md_escape(cap)}](figures/{stem}.png)\n\n*{md_escape(cap)}*\n"
            for stem, cap, _ in doc.figures
        ]
    md += ["## Notes", "", *[f"- {md_escape(n)}" for n in doc.notes], ""]
    files = {f"figures/{stem}.png": png for stem, _, png in doc.figures}
    files[FILES["markdown"]] = "\n".join(md).encode("utf-8")
    files[FILES["latex"]] = document_latex(doc.tables, doc.title).encode("utf-8")
    files[FILES["csv"]] = tables_csv(doc.tables).encode("utf-8")
    files[FILES["html"]] = page_html(doc).encode("utf-8")
    return files


def figure_html(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>\n"
    )


def page_html(doc: Document) -> str:
    """The whole self-contained page, figures embedded."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(doc.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(doc.title)}</h1>",
        "<ul>" + "".join(f"<li>{escape(x)}</li>" for x in doc.lines) + "</ul>",
        "<h2>Tables</h2>",
        *[table_html(t) for t in doc.tables],
        *(["<h2>Figures</h2>"] if doc.figures else []),
        *[figure_html(png, caption) for _, caption, png in doc.figures],
        "<h2>Notes</h2>",
        '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in doc.notes) + "</ul>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_document(
    doc: Document | Callable[[], Document],
    out_dir: str | Path,
    *,
    kind: str = "report",
    inputs: Iterable[str | Path] = (),
    may_be_inside: Iterable[str | Path] = (),
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write the document into `out_dir`; return the written files by format.

    `out_dir` is a result folder of `util.outdir` (the one output-folder policy): checked
    (not an input of `inputs`, not holding one, not inside one unless in `may_be_inside`;
    a non-empty folder only with `overwrite` and only if e2net-eval wrote it as a `kind`),
    locked, written into a temporary folder and swapped in whole. `doc` may be a function
    that builds the document: it runs after those checks, so a refused or unwritable
    output fails before the work.
    """
    out_dir = Path(out_dir)
    with result_folder(
        out_dir, kind=kind, inputs=inputs, may_be_inside=may_be_inside, overwrite=overwrite
    ) as tmp:
        if callable(doc):
            doc = doc()
        files = render_document(doc)
        (tmp / "figures").mkdir()
        for rel, data in files.items():
            (tmp / rel).write_bytes(data)
    counts = (len(doc.tables), len(doc.figures))
    log.info("%s written to %s (%d tables, %d figures)", doc.title, out_dir, *counts)
    return {fmt: out_dir / name for fmt, name in FILES.items()}
