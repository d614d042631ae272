"""Rendering of reports (HTML, Markdown), kept apart from the compute functions.

Each stage has its own module here; this file holds the small shared building blocks.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem;color:#1b1b1b}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00020;font-weight:600}.ok{color:#1b7f3b;font-weight:600}.warn{color:#a15c00}
img,svg{max-width:100%}
figure{margin:0}figcaption{margin:.3rem 0}.plots{display:flex;flex-wrap:wrap;gap:1.2rem}
.verdict{padding:.7rem 1rem;border-radius:4px;margin:1rem 0;border:1px solid}
.verdict.ok{background:#e8f5ec;border-color:#1b7f3b}.verdict.bad{background:#fdecee;border-color:#b00020}
.verdict.pending{background:#fff6e0;border-color:#a15c00}.verdict ul{margin:.4rem 0 0}
.verdict b{font-size:1.1rem}.note{color:#555}
.warning{background:#fff6e0;border-left:4px solid #a15c00;padding:.4rem .8rem}
.small{color:#555;font-size:.85rem}
.wide{overflow-x:auto;max-width:100%}
table.kv td{text-align:left}figure.flagged{outline:2px solid #a15c00;outline-offset:4px}
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


def html_table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, header_row: bool = True
) -> str:
    """An HTML table; cells are escaped. Without a header row it is a key/value table."""
    body = "".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in rows)
    if not header_row:
        return f"<table class='kv'><tbody>{body}</tbody></table>"
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_NUMBER = re.compile(r"^-?[\d.,]+(e[+-]?\d+)?%?( \([\d.,]+%\))?$")


def _td(value: Any) -> str:
    """A cell; numbers (and text such as "12 (3.5%)") are right-aligned so digits line up."""
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    numeric = numeric or (isinstance(value, str) and bool(_NUMBER.match(value)))
    return f"<td{' class=n' if numeric else ''}>{html.escape(fmt(value))}</td>"


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; pipes in cells are escaped."""

    def cell(value: Any) -> str:
        return fmt(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
