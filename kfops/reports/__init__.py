"""Rendering of reports (HTML, Markdown), kept apart from the compute functions.

Each stage has its own module here; this file holds the small shared building blocks.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem;color:#1b1b1b}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.bad{color:#b00020;font-weight:600}.ok{color:#1b7f3b;font-weight:600}.warn{color:#a15c00}
img,svg{max-width:100%}
"""


def fmt(value: Any) -> str:
    """Formats numbers to 4 significant decimals, everything else with str()."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def html_page(title: str, body: str) -> str:
    """A standalone HTML page (no external assets, so it opens anywhere, including the KFP UI)."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


def html_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table; cells are escaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; pipes in cells are escaped."""

    def cell(value: Any) -> str:
        return fmt(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
