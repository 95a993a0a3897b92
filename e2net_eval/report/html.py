"""The self-contained HTML page: tables, notes and figures embedded as base64 PNG."""

from __future__ import annotations

import base64
from html import escape

from e2net_eval.report.render import _sections
from e2net_eval.report.tables import MEASURED, ReportTable

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
        cls = "measured" if name == MEASURED else "published"
        for r in rows:
            cells = "".join(f"<td>{_cell_html(c.text)}</td>" for c in r.cells)
            tip = escape(r.meta.get("citation", r.source))
            body.append(f'<tr class="{cls}" title="{tip}"><td>{escape(r.label)}</td>{cells}</tr>')
    notes = "".join(f"<li>{escape(n)}</li>" for n in table.notes)
    return (
        f'<h3 id="{escape(table.key)}">{escape(table.title)}</h3>\n'
        f"<table><thead><tr><th></th>{head}</tr></thead><tbody>\n"
        + "\n".join(body)
        + f'\n</tbody></table>\n<ul class="notes">{notes}</ul>\n'
    )


def figure_html(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>\n"
    )


def page_html(
    title: str,
    run_lines: list[str],
    tables: list[ReportTable],
    figures: list[tuple[str, str, bytes]],
    notes: list[str],
) -> str:
    """The whole page; `figures` are (name, caption, PNG bytes)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        "<ul>" + "".join(f"<li>{escape(x)}</li>" for x in run_lines) + "</ul>",
        "<h2>Tables</h2>",
        *[table_html(t) for t in tables],
        *(["<h2>Figures</h2>"] if figures else []),
        *[figure_html(png, caption) for _, caption, png in figures],
        "<h2>Notes</h2>",
        '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
