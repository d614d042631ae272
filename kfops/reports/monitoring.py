"""The monitoring report: kfops' decision on top, Evidently's own reports embedded below.

Evidently's HTML is a complete document with its scripts inline; embedding it whole in an iframe
`srcdoc` keeps it intact and the page standalone (no external assets), which the KFP UI needs.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from kfops import reports


def render(summary: Mapping[str, Any], drift_html: str, quality_html: str) -> str:
    """The full HTML page for a monitoring result.

    Args:
        summary: `MonitorResult.to_dict()`.
        drift_html: Evidently's data drift report (empty when the window was not judged).
        quality_html: Evidently's quality report (empty without enough labels).
    """
    parts = [_decision(summary), _columns(summary), _quality(summary)]
    if drift_html:
        parts.append("<h2>Evidently: data and prediction drift</h2>" + _embed(drift_html))
    if quality_html:
        parts.append("<h2>Evidently: quality on labelled traffic</h2>" + _embed(quality_html))
    return reports.html_page("kfops monitoring report", "".join(p for p in parts if p))


def _decision(summary: Mapping[str, Any]) -> str:
    retrain = summary["retrain"]
    verdict = "<p class='bad'>Retrain</p>" if retrain else "<p class='ok'>No retraining needed</p>"
    if summary["status"] != "judged":
        verdict = f"<p class='warn'>Not judged ({html.escape(summary['status'])})</p>"
    items = [*summary["reasons"], *summary["notes"]]
    listed = "".join(f"<li>{html.escape(str(r))}</li>" for r in items)
    rows = [
        ("model", f"{summary.get('model') or ''} version {summary.get('version') or ''}"),
        ("rows in window", summary["rows"]),
        ("rows judged", summary["judged_rows"]),
        ("reference summary rows", summary["reference_rows"]),
        ("sample error bound (DKW)", summary["sample_error_bound"]),
        ("drift share", "" if summary["drift_share"] is None else summary["drift_share"]),
        ("drift share threshold", summary["config"]["drift_share_threshold"]),
        ("key columns", ", ".join(summary["config"]["key_columns"]) or "none"),
    ]
    table = reports.html_table(("figure", "value"), rows)
    return f"<h2>Decision</h2>{verdict}<ul>{listed}</ul>{table}"


def _columns(summary: Mapping[str, Any]) -> str:
    tested = {**summary["columns"], **summary["prediction_drift"]}
    if not tested:
        return ""
    rows = [
        (name, d["method"], d["threshold"], d["score"], "drifted" if d["drifted"] else "")
        for name, d in tested.items()
    ]
    header = ("column", "method", "threshold", "score", "drift")
    return "<h2>Per-column drift</h2>" + reports.html_table(header, rows)


def _quality(summary: Mapping[str, Any]) -> str:
    if not summary["quality"]:
        return ""
    rows = sorted(summary["quality"].items())
    table = reports.html_table(("metric", "value"), rows)
    return f"<h2>Quality ({summary['labelled_rows']} labelled rows)</h2>{table}"


def _embed(document: str) -> str:
    return (
        f'<iframe srcdoc="{html.escape(document, quote=True)}" '
        "style='width:100%;height:1600px;border:1px solid #ddd' loading='lazy'></iframe>"
    )
