"""One report document (title, description, tables, figures, notes) and its one writer.

`report` and `compare` both build a `Document` and call `write_document`: the same four
formats and the same look. `render_document` makes every file's bytes in memory;
`write_document` is the only place that touches the output folder (all files into a
temporary folder beside it, then one rename), so an output-folder policy has one place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from e2net_eval.report.html import page_html
from e2net_eval.report.render import document_latex, table_markdown, tables_csv
from e2net_eval.report.tables import ReportTable
from e2net_eval.util.atomic import atomic_dir

log = logging.getLogger(__name__)

#: Format -> file name inside the output folder (figures go to ``figures/<stem>.png``).
FILES = {
    "markdown": "report.md",
    "latex": "report.tex",
    "csv": "tables.csv",
    "html": "report.html",
}


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
    md = [f"# {doc.title}", "", *[f"- {x}" for x in doc.lines], ""]
    md += [table_markdown(t) for t in doc.tables]
    if doc.figures:
        md += ["## Figures", ""]
        md += [f"![{cap}](figures/{stem}.png)\n\n*{cap}*\n" for stem, cap, _ in doc.figures]
    md += ["## Notes", "", *[f"- {n}" for n in doc.notes], ""]
    files = {f"figures/{stem}.png": png for stem, _, png in doc.figures}
    files[FILES["markdown"]] = "\n".join(md).encode("utf-8")
    files[FILES["latex"]] = document_latex(doc.tables, doc.title).encode("utf-8")
    files[FILES["csv"]] = tables_csv(doc.tables).encode("utf-8")
    files[FILES["html"]] = page_html(
        doc.title, doc.lines, doc.tables, doc.figures, doc.notes
    ).encode("utf-8")
    return files


def write_document(doc: Document, out_dir: str | Path) -> dict[str, Path]:
    """Write the document into `out_dir` (replaced as a whole, via a temporary folder and a
    rename); return the written files by format."""
    out_dir = Path(out_dir)
    files = render_document(doc)
    with atomic_dir(out_dir) as tmp:
        (tmp / "figures").mkdir()
        for rel, data in files.items():
            (tmp / rel).write_bytes(data)
    log.info(
        "%s written to %s (%d tables, %d figures)",
        doc.title,
        out_dir,
        len(doc.tables),
        len(doc.figures),
    )
    return {kind: out_dir / name for kind, name in FILES.items()}
