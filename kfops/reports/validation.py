"""The validation report: anomalies first, then the schema, per-column statistics and plots.

Markdown (anomalies only) or a standalone HTML page with inline SVG distributions: a histogram per
numeric column, the top categories per categorical one, as TFDV users expect from its statistics
view. The statistics come from `kfops.reports.profile` over the rows validate checked.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from kfops import reports, schema
from kfops.reports import profile as profile_mod
from kfops.reports import svg
from kfops.validate import results

_HEADER = ("severity", "column", "rule", "detail", "examples")


def validation_markdown(report: results.ValidationReport) -> str:
    """Renders the report as GitHub-flavoured Markdown."""
    lines = ["# Data validation\n", _summary(report) + "\n"]
    if report.anomalies:
        lines.append(reports.md_table(_HEADER, _rows(report)))
    else:
        lines.append("No anomalies: the data matches the schema.\n")
    return "\n".join(lines)


def validation_html(
    report: results.ValidationReport,
    data_schema: schema.Schema | None = None,
    frame: pd.DataFrame | None = None,
) -> str:
    """Renders the report as a standalone HTML page (the KFP UI shows it as an HTML artifact).

    Args:
        report: what validation found.
        data_schema: the schema the data was checked against (adds the schema section).
        frame: the rows checked (adds statistics and distribution plots per column).
    """
    status_class = "ok" if report.ok else "bad"
    body = f"<div class='verdict {status_class}'><b>{html.escape(_summary(report))}</b></div>"
    body += "<h2>Anomalies</h2>"
    if report.anomalies:
        body += _anomalies_html(report)
    else:
        body += "<p>No anomalies: the data matches the schema.</p>"
    columns = profile_mod.profile(frame, data_schema) if frame is not None else []
    flagged = {a.column for a in report.anomalies}
    if data_schema is not None:
        body += _schema_html(data_schema)
    if columns:
        body += _statistics_html(columns, flagged)
        body += _distributions_html(columns, flagged)
    return reports.html_page("Data validation", body)


def _summary(report: results.ValidationReport) -> str:
    verdict = "PASSED" if report.ok else "FAILED"
    target = f", label {report.label!r} ({report.task})" if report.label else ""
    return (
        f"{verdict}: {len(report.blocking)} blocking, {len(report.warnings)} warning(s) "
        f"in {report.n_rows} rows x {report.n_columns} columns{target}."
    )


def _rows(report: results.ValidationReport) -> list[tuple[str, str, str, str, str]]:
    return [
        (a.severity, a.column, a.rule, a.detail, ", ".join(map(str, a.examples)))
        for a in report.anomalies
    ]


def _anomalies_html(report: results.ValidationReport) -> str:
    ordered = sorted(report.anomalies, key=lambda a: a.severity != "error")  # blocking first
    head = "".join(f"<th>{h}</th>" for h in _HEADER)
    body = ""
    for a in ordered:
        kind = "bad" if a.severity == "error" else "warn"
        cells = (a.column, a.rule, a.detail, ", ".join(map(str, a.examples)))
        body += f"<tr><td class='{kind}'>{html.escape(a.severity)}</td>"
        body += "".join(f"<td style='text-align:left'>{html.escape(str(c))}</td>" for c in cells)
        body += "</tr>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _schema_html(data_schema: schema.Schema) -> str:
    rows = [
        (
            c.name,
            c.dtype,
            c.role,
            "yes" if c.nullable else "no",
            "" if c.max_null_fraction >= 1 else f"{c.max_null_fraction:.3f}",
            _domain(c),
        )
        for c in data_schema.columns
    ]
    head = "label " + repr(data_schema.label) if data_schema.label else "no label"
    task = f", task {data_schema.task}" if data_schema.task else ""
    classes = data_schema.label_classes
    shown = f", classes {_listed(classes)}" if classes else ""
    header = ("column", "type", "role", "nullable", "max missing", "range / domain")
    return f"<h2>Schema</h2><p>{html.escape(head + task + shown)}</p>" + reports.html_table(
        header, rows
    )


def _domain(c: schema.ColumnSpec) -> str:
    if c.domain is not None:
        return _listed(c.domain)
    if c.min is not None or c.max is not None:
        return f"{svg.tick_label(c.min) if c.min is not None else '…'} to " + (
            svg.tick_label(c.max) if c.max is not None else "…"
        )
    return ""


def _listed(values: Sequence[Any], limit: int = 8) -> str:
    shown = ", ".join(map(str, values[:limit]))
    return shown + (f", … ({len(values)} values)" if len(values) > limit else "")


def _ordered(columns: list[dict[str, Any]], flagged: set[str]) -> list[dict[str, Any]]:
    """Columns with anomalies first, then in schema order."""
    return sorted(columns, key=lambda c: c["name"] not in flagged)


def _statistics_html(columns: list[dict[str, Any]], flagged: set[str]) -> str:
    numeric = [c for c in _ordered(columns, flagged) if c["kind"] == "numeric"]
    other = [c for c in _ordered(columns, flagged) if c["kind"] != "numeric"]
    out = "<h2>Statistics</h2>"
    if numeric:
        header = (
            "column",
            "role",
            "missing",
            "distinct",
            "mean",
            "std",
            "min",
            "median",
            "max",
            "zeros",
        )
        rows = [
            (
                _mark(c, flagged),
                c["role"],
                _missing(c),
                c["distinct"],
                *(_num(c.get(k)) for k in ("mean", "std", "min", "median", "max")),
                c.get("zeros", 0),
            )
            for c in numeric
        ]
        out += "<h3>Numeric columns</h3>" + reports.html_table(header, rows)
    if other:
        header = ("column", "type", "role", "missing", "distinct", "most frequent")
        rows = [
            (_mark(c, flagged), c["dtype"], c["role"], _missing(c), c["distinct"], _mode(c))
            for c in other
        ]
        out += "<h3>Categorical, text and time columns</h3>" + reports.html_table(header, rows)
    return out


def _mark(column: Mapping[str, Any], flagged: set[str]) -> str:
    return f"⚠ {column['name']}" if column["name"] in flagged else column["name"]


def _missing(column: Mapping[str, Any]) -> str:
    return f"{column['missing']} ({column['missing_fraction']:.1%})"


def _num(value: float | None) -> str:
    return "n/a" if value is None else svg.tick_label(value)


def _mode(column: Mapping[str, Any]) -> str:
    if column["kind"] == "datetime":
        return f"{column.get('min')} to {column.get('max')}"
    top = column.get("top") or []
    if not top:
        return ""
    value, count = top[0]
    return f"{svg.shorten(value, 30)} ({count / max(column['rows'], 1):.1%})"


def _distributions_html(columns: list[dict[str, Any]], flagged: set[str]) -> str:
    figures = []
    for c in _ordered(columns, flagged):
        title = f"{c['name']} ({c['dtype']}, {c['role']})"
        if c["kind"] == "numeric" and c.get("histogram"):
            hist = c["histogram"]
            chart = svg.histogram(
                hist["edges"], hist["counts"], x_label=c["name"], label=f"histogram of {c['name']}"
            )
        elif c["kind"] == "categorical" and c["distinct"] == c["rows"] - c["missing"]:
            continue  # every value distinct (an id): a chart of 1s says nothing
        elif c["kind"] == "categorical" and c.get("top"):
            items = [(value, float(count)) for value, count in c["top"]]
            if c.get("other"):
                items.append((f"({c['other']} rows in other values)", float(c["other"])))
            chart = svg.bar_chart(
                items, width=320, max_label=24, label=f"top values of {c['name']}"
            )
        else:
            continue
        warn = " class='flagged'" if c["name"] in flagged else ""
        caption = f"<figcaption><b>{html.escape(title)}</b></figcaption>"
        figures.append(f"<figure{warn}>{caption}{chart}</figure>")
    if not figures:
        return ""
    return "<h2>Distributions</h2><div class='plots'>" + "".join(figures) + "</div>"
