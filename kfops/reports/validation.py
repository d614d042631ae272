"""The validation report: every anomaly, blocking ones first, as Markdown or standalone HTML."""

from __future__ import annotations

import html

from kfops import reports
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


def validation_html(report: results.ValidationReport) -> str:
    """Renders the report as a standalone HTML page (the KFP UI shows it as an HTML artifact)."""
    status_class = "ok" if report.ok else "bad"
    body = f"<p class='{status_class}'>{html.escape(_summary(report))}</p>"
    if report.anomalies:
        body += reports.html_table(_HEADER, _rows(report))
    else:
        body += "<p>No anomalies: the data matches the schema.</p>"
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
