"""The evaluation report: a standalone HTML page with inline SVG plots, and Markdown tables.

Plots are SVG drawn here (no matplotlib in the image, no external assets), so the page opens
anywhere, including the KFP UI's HTML viewer. Input is an `Evaluation` or its dict form.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from kfops import evaluate as evaluate_mod
from kfops import reports

_W, _H, _M = 340, 280, 42  # plot width, height, margin (px)
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
_NONE = "n/a"


def evaluation_html(evaluation: evaluate_mod.Evaluation | Mapping[str, Any]) -> str:
    """The full report: summary, curves, confusion matrix, calibration, slices, fairness, notes."""
    ev = _as_dict(evaluation)
    parts = [f"<p>{ev['task']} · {ev['n_rows']} test rows{_positive(ev)}</p>", _summary_html(ev)]
    curves = ev.get("curves") or {}
    plots = []
    if "roc" in curves:
        roc = curves["roc"]
        plots.append(
            _figure("ROC curve", _lines([("model", roc["fpr"], roc["tpr"])], "FPR", "TPR", True))
        )
    if "pr" in curves:
        pr = curves["pr"]
        plots.append(
            _figure(
                "Precision-recall",
                _lines([("model", pr["recall"], pr["precision"])], "recall", "precision"),
            )
        )
    if "calibration" in curves:
        plots.append(_figure("Calibration", _calibration(curves["calibration"])))
    if "confusion" in curves:
        plots.append(_figure("Confusion matrix", _heatmap(curves["confusion"])))
    if plots:
        parts.append(
            "<h2>Curves</h2><div style='display:flex;flex-wrap:wrap;gap:1rem'>"
            + "".join(plots)
            + "</div>"
        )
    parts += [_slices_html(ev), _fairness_html(ev), _notes_html(ev)]
    return reports.html_page("Model evaluation", "".join(parts))


def evaluation_markdown(evaluation: evaluate_mod.Evaluation | Mapping[str, Any]) -> str:
    """Markdown tables (metrics vs baseline, slices, fairness) for the model card."""
    ev = _as_dict(evaluation)
    out = [f"## Evaluation\n\n{ev['task']}, {ev['n_rows']} test rows{_positive(ev)}.\n\n"]
    out.append(reports.md_table(["metric", "model", "baseline", "lift"], _summary_rows(ev)))
    header, rows = _slice_table(ev)
    if rows:
        out.append("\n### Slices\n\n" + reports.md_table(header, rows))
    header, rows, gaps = _fairness_tables(ev)
    if rows:
        out.append(
            f"\n### Fairness across `{ev['fairness']['column']}`\n\n"
            + reports.md_table(header, rows)
        )
        out.append("\n" + reports.md_table(["gap", "value"], gaps))
    if ev.get("notes"):
        out.append("\n### Notes\n\n" + "".join(f"- {n}\n" for n in ev["notes"]))
    return "".join(out)


def _as_dict(evaluation: Any) -> dict[str, Any]:
    return evaluation.to_dict() if hasattr(evaluation, "to_dict") else dict(evaluation)


def _positive(ev: Mapping[str, Any]) -> str:
    label = ev.get("positive_label")
    return "" if label is None else f" · positive class {html.escape(repr(label))}"


def _cell(value: Any) -> Any:
    return _NONE if value is None else value


def _summary_rows(ev: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    base = ev.get("baseline_metrics") or {}
    rows = []
    for name, value in ev["metrics"].items():
        other = base.get(name)
        lift = value - other if value is not None and other is not None else None
        rows.append((name, _cell(value), _cell(other), _cell(lift)))
    return rows


def _summary_html(ev: Mapping[str, Any]) -> str:
    return "<h2>Metrics</h2>" + reports.html_table(
        ["metric", "model", "baseline", "lift"], _summary_rows(ev)
    )


def _key_metric(ev: Mapping[str, Any]) -> str:
    return "roc_auc" if ev["task"] == "classification" else "mae"


def _slice_table(ev: Mapping[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    slices = ev.get("slices") or {}
    names = list(ev["metrics"])
    rows = []
    for label, values in slices.items():
        if values.get("too_small"):
            rows.append((label, values["rows"], "too small", *[_NONE] * len(names)))
        else:
            rows.append((label, values["rows"], "", *(_cell(values.get(m)) for m in names)))
    return ["slice", "rows", "flag", *names], rows


def _slices_html(ev: Mapping[str, Any]) -> str:
    header, rows = _slice_table(ev)
    if not rows:
        return ""
    key = _key_metric(ev)
    bars = [
        (label, v.get(key))
        for label, v in (ev.get("slices") or {}).items()
        if not v.get("too_small")
    ]
    chart = _figure(f"{key} per slice", _bars(bars, ev["metrics"].get(key))) if bars else ""
    return "<h2>Slices</h2>" + chart + reports.html_table(header, rows)


def _fairness_tables(
    ev: Mapping[str, Any],
) -> tuple[list[str], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    fairness = ev.get("fairness") or {}
    groups = fairness.get("groups") or {}
    if not groups:
        return [], [], []
    stats = [k for k in next(iter(groups.values())) if k not in ("rows", "too_small")]
    rows = [
        (g, v["rows"], "too small" if v["too_small"] else "", *(_cell(v.get(s)) for s in stats))
        for g, v in groups.items()
    ]
    gaps = [(k, _cell(v)) for k, v in fairness.items() if k.endswith(("_difference", "_ratio"))]
    return ["group", "rows", "flag", *stats], rows, gaps


def _fairness_html(ev: Mapping[str, Any]) -> str:
    header, rows, gaps = _fairness_tables(ev)
    if not rows:
        return ""
    column = html.escape(str(ev["fairness"]["column"]))
    note = "<p>Groups flagged too small are shown but left out of the gaps.</p>"
    return (
        f"<h2>Fairness across {column}</h2>{note}"
        + reports.html_table(header, rows)
        + reports.html_table(["gap", "value"], gaps)
    )


def _notes_html(ev: Mapping[str, Any]) -> str:
    notes = ev.get("notes") or []
    if not notes:
        return ""
    return "<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"


def _figure(title: str, svg: str) -> str:
    caption = f"<figcaption><b>{html.escape(title)}</b></figcaption>"
    return f"<figure style='margin:0'>{caption}{svg}</figure>"


def _el(tag: str, content: str = "", **attrs: Any) -> str:
    """One SVG element; attribute names use _ for - (text_anchor -> text-anchor)."""
    parts = []
    for key, value in attrs.items():
        text = f"{value:.1f}" if isinstance(value, float) else str(value)
        parts.append(f"{key.replace('_', '-')}='{html.escape(text)}'")
    return f"<{tag} {' '.join(parts)}>{content}</{tag}>"


def _text(x: float, y: float, content: Any, anchor: str = "middle", **attrs: Any) -> str:
    return _el("text", html.escape(str(content)), x=x, y=y, text_anchor=anchor, **attrs)


def _svg(body: str, width: int = _W, height: int = _H) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' font-size='11' font-family='sans-serif'>{body}</svg>"
    )


def _axes(x_label: str, y_label: str, lo: float = 0.0, hi: float = 1.0) -> str:
    x0, y0, x1, y1 = _M, _H - _M, _W - 10, 10
    body = _el("rect", x=x0, y=y1, width=x1 - x0, height=y0 - y1, fill="none", stroke="#999")
    for t in (0.0, 0.5, 1.0):
        tick = f"{lo + (hi - lo) * t:.2g}"
        body += _text(x0 + (x1 - x0) * t, y0 + 14, tick)
        body += _text(x0 - 4, y0 - (y0 - y1) * t + 4, tick, anchor="end")
    body += _text((x0 + x1) / 2, _H - 6, x_label)
    return body + _text(0, 0, y_label, transform=f"translate(12,{(y0 + y1) / 2}) rotate(-90)")


def _point(x: float, y: float, lo: float = 0.0, hi: float = 1.0) -> str:
    span = (hi - lo) or 1.0
    px = _M + (_W - 10 - _M) * (x - lo) / span
    py = (_H - _M) - (_H - _M - 10) * (y - lo) / span
    return f"{px:.1f},{py:.1f}"


def _lines(
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    x_label: str,
    y_label: str,
    diagonal: bool = False,
    lo: float = 0.0,
    hi: float = 1.0,
) -> str:
    body = _axes(x_label, y_label, lo, hi)
    if diagonal:
        ends = f"{_point(lo, lo, lo, hi)} {_point(hi, hi, lo, hi)}"
        body += _el("polyline", points=ends, fill="none", stroke="#bbb", stroke_dasharray=4)
    for i, (name, xs, ys) in enumerate(series):
        points = " ".join(_point(x, y, lo, hi) for x, y in zip(xs, ys, strict=True))
        colour = _COLOURS[i % len(_COLOURS)]
        title = _el("title", html.escape(name))
        body += _el("polyline", title, points=points, fill="none", stroke=colour, stroke_width=2)
    return _svg(body)


def _calibration(calibration: Mapping[str, Any]) -> str:
    bins = calibration.get("bins") or []
    if calibration.get("kind") == "regression":
        values = [b[k] for b in bins for k in ("mean_predicted", "mean_actual")] or [0.0, 1.0]
        lo, hi = min(values), max(values)
        xs, ys = [b["mean_predicted"] for b in bins], [b["mean_actual"] for b in bins]
        return _lines([("model", xs, ys)], "mean predicted", "mean actual", True, lo, hi)
    xs, ys = [b["mean_predicted"] for b in bins], [b["fraction_positive"] for b in bins]
    y_label = "fraction positive" if calibration.get("kind") == "positive" else "accuracy"
    return _lines([("model", xs, ys)], "mean predicted", y_label, True)


def _heatmap(confusion: Mapping[str, Any]) -> str:
    labels, matrix = confusion["labels"], confusion["matrix"]
    n = max(len(labels), 1)
    cell = min(48, (_W - 80) // n)
    top = max((max(row) for row in matrix if row), default=0) or 1
    body = _text(80 + cell * n / 2, 12, "predicted")
    body += _text(0, 0, "actual", transform=f"translate(12,{30 + cell * n / 2}) rotate(-90)")
    for i, label in enumerate(labels):
        name = str(label)[:10]
        body += _text(80 + cell * i + cell / 2, 26, name)
        body += _text(74, 30 + cell * i + cell / 2 + 4, name, anchor="end")
        for j, count in enumerate(matrix[i]):
            shade = int(245 - 180 * count / top)
            x, y = 80 + cell * j, 30 + cell * i
            fill = f"rgb({shade},{shade},255)"
            body += _el("rect", x=x, y=y, width=cell, height=cell, fill=fill, stroke="#fff")
            body += _text(x + cell / 2, y + cell / 2 + 4, count)
    return _svg(body, max(_W, 90 + cell * n), 40 + cell * n)


def _bars(items: Sequence[tuple[str, float | None]], overall: float | None) -> str:
    values = [abs(v) for _, v in items if v is not None]
    values += [abs(overall)] if overall is not None else []
    # Scores in [0, 1] are drawn against 1.0, so a 0.93 bar reads as 93% of the full width.
    top = max(values, default=1.0) or 1.0
    top = 1.0 if top <= 1.0 else top
    row, left, width = 18, 150, _W - 160
    body = ""
    for i, (label, value) in enumerate(items):
        y = 6 + i * row
        length = 0.0 if value is None else width * max(value, 0.0) / top
        body += _text(left - 4, y + 12, label[:24], anchor="end")
        body += _el("rect", x=left, y=y, width=length, height=row - 4, fill=_COLOURS[0])
        body += _text(left + length + 3, y + 12, reports.fmt(_cell(value)), anchor="start")
    height = 12 + row * len(items)
    if overall is not None:
        x = left + width * max(overall, 0.0) / top
        line = dict(x1=x, x2=x, y1=0, y2=height, stroke=_COLOURS[1], stroke_dasharray=3)
        body += _el("line", _el("title", "overall"), **line)
    return _svg(body, _W + 40, height)
