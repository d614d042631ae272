"""Small inline-SVG charts for the reports: lines, scatter, bars, histograms, a heatmap.

Drawn here rather than with matplotlib (not in the image), so a report is one self-contained page
that opens offline, in a browser or in the KFP UI. Margins are sized from the tick labels and
category names they must hold, so nothing is clipped; long names are shortened with an ellipsis
and kept whole in a tooltip (`<title>`).
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Sequence
from typing import Any

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
REFERENCE = "#888"  # chance lines, baselines
_CHAR = 6.2  # average width (px) of one 11px sans-serif character
_FONT = 11


def el(tag: str, content: str = "", **attrs: Any) -> str:
    """One SVG element; attribute names use _ for - (text_anchor -> text-anchor)."""
    parts = []
    for key, value in attrs.items():
        text = f"{value:.1f}" if isinstance(value, float) else str(value)
        parts.append(f"{key.replace('_', '-')}='{html.escape(text)}'")
    return f"<{tag} {' '.join(parts)}>{content}</{tag}>"


def text(x: float, y: float, content: Any, anchor: str = "middle", **attrs: Any) -> str:
    """A text element, escaped."""
    return el("text", html.escape(str(content)), x=x, y=y, text_anchor=anchor, **attrs)


def svg(body: str, width: float, height: float, label: str = "") -> str:
    """The outer element; `label` becomes the accessible name."""
    w, h = math.ceil(width), math.ceil(height)
    aria = f" role='img' aria-label='{html.escape(label)}'" if label else ""
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' "
        f"viewBox='0 0 {w} {h}' font-size='{_FONT}' font-family='sans-serif'{aria}>{body}</svg>"
    )


def shorten(label: str, limit: int) -> str:
    """`label` cut to `limit` characters with an ellipsis."""
    return label if len(label) <= limit else label[: max(limit - 1, 1)] + "…"


def tick_label(value: float) -> str:
    """Compact, readable tick text: 0.25, 950, 23.6k, 1.5M, 2.1G, 1e-05."""
    if value == 0:
        return "0"
    for threshold, scale, suffix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.4g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, value = [], first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def padded_range(values: Sequence[float], pad: float = 0.04) -> tuple[float, float]:
    """(low, high) of the finite values with a little room; (0, 1) when there are none."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    if hi == lo:
        return lo - 1.0, hi + 1.0
    room = (hi - lo) * pad
    return lo - room, hi + room


@dataclasses.dataclass(frozen=True)
class Frame:
    """A plot area inside an SVG: data ranges and the pixel box they map to."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    width: float = 360
    height: float = 300
    x_label: str = ""
    y_label: str = ""

    @property
    def left(self) -> float:
        """Left edge of the box: room for the y title and the widest tick label."""
        widest = max((len(tick_label(t)) for t in self.y_ticks), default=1)
        return 28 + widest * _CHAR  # y title + tick labels + gap

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1): left, bottom, right, top of the plotting box in pixels."""
        return self.left, self.height - 40, self.width - 14, 12

    @property
    def x_ticks(self) -> list[float]:
        """Tick values on the x axis."""
        return nice_ticks(*self.x_range)

    @property
    def y_ticks(self) -> list[float]:
        """Tick values on the y axis."""
        return nice_ticks(*self.y_range)

    def x(self, value: float) -> float:
        """Pixel x of a data value."""
        x0, _, x1, _ = self.box
        lo, hi = self.x_range
        return x0 + (x1 - x0) * (value - lo) / ((hi - lo) or 1.0)

    def y(self, value: float) -> float:
        """Pixel y of a data value."""
        _, y0, _, y1 = self.box
        lo, hi = self.y_range
        return y0 - (y0 - y1) * (value - lo) / ((hi - lo) or 1.0)

    def point(self, x: float, y: float) -> str:
        """The pixel position "x,y", for polylines."""
        return f"{self.x(x):.1f},{self.y(y):.1f}"

    def inside(self, x: float, y: float) -> bool:
        """Whether a data point lies within the ranges."""
        return self.x_range[0] <= x <= self.x_range[1] and self.y_range[0] <= y <= self.y_range[1]

    def axes(self) -> str:
        """Box, grid, tick labels and axis titles."""
        x0, y0, x1, y1 = self.box
        body = el("rect", x=x0, y=y1, width=x1 - x0, height=y0 - y1, fill="none", stroke="#999")
        for t in self.x_ticks:
            x = self.x(t)
            body += el("line", x1=x, x2=x, y1=y0, y2=y1, stroke="#eee")
            body += text(x, y0 + 14, tick_label(t))
        for t in self.y_ticks:
            y = self.y(t)
            body += el("line", x1=x0, x2=x1, y1=y, y2=y, stroke="#eee")
            body += text(x0 - 4, y + 4, tick_label(t), anchor="end")
        body += text((x0 + x1) / 2, self.height - 8, self.x_label)
        middle = (y0 + y1) / 2
        return body + text(0, 0, self.y_label, transform=f"translate(12,{middle:.1f}) rotate(-90)")

    def diagonal(self) -> str:
        """The dashed y = x line where the ranges overlap."""
        lo = max(self.x_range[0], self.y_range[0])
        hi = min(self.x_range[1], self.y_range[1])
        if hi <= lo:
            return ""
        ends = f"{self.point(lo, lo)} {self.point(hi, hi)}"
        return el("polyline", points=ends, fill="none", stroke="#aaa", stroke_dasharray=4)

    def legend(self, names: Sequence[tuple[str, str]]) -> str:
        """Legend entries (text, colour) in the lower right corner of the box, models first."""
        names = sorted(names, key=lambda n: n[1] == REFERENCE)
        _, y0, x1, _ = self.box
        width = max((len(n) for n, _ in names), default=0) * _CHAR + 30
        top = y0 - 8 - 16 * len(names)
        body = el(
            "rect",
            x=x1 - width - 6,
            y=top - 4,
            width=width,
            height=16 * len(names) + 6,
            fill="#fff",
            stroke="#ccc",
            opacity="0.9",
        )
        for i, (name, colour) in enumerate(names):
            y = top + 16 * i + 8
            body += el(
                "line", x1=x1 - width, x2=x1 - width + 16, y1=y, y2=y, stroke=colour, stroke_width=2
            )
            body += text(x1 - width + 20, y + 4, name, anchor="start")
        return body


def line_plot(
    frame: Frame,
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    diagonal: bool = False,
    references: Sequence[tuple[str, Sequence[float], Sequence[float]]] = (),
    label: str = "",
) -> str:
    """Lines (name, xs, ys) with a legend naming each; `references` are drawn grey and dashed."""
    body = frame.axes() + (frame.diagonal() if diagonal else "")
    styled = [(s, REFERENCE, {"stroke_width": 1.5, "stroke_dasharray": 5}) for s in references]
    styled += [(s, COLOURS[i % len(COLOURS)], {"stroke_width": 2}) for i, s in enumerate(series)]
    names = []
    for (name, xs, ys), colour, style in styled:
        points = " ".join(frame.point(x, y) for x, y in zip(xs, ys, strict=True))
        tip = el("title", html.escape(name))
        body += el("polyline", tip, points=points, fill="none", stroke=colour, **style)
        names.append((name, colour))
    return svg(body + frame.legend(names), frame.width, frame.height, label)


def scatter_plot(
    frame: Frame,
    xs: Sequence[float],
    ys: Sequence[float],
    *,
    diagonal: bool = False,
    zero_line: bool = False,
    label: str = "",
    legend: Sequence[tuple[str, str]] = (),
) -> str:
    """Points, optionally with the y = x diagonal or a y = 0 line."""
    body = frame.axes() + (frame.diagonal() if diagonal else "")
    if zero_line and frame.y_range[0] < 0 < frame.y_range[1]:
        x0, _, x1, _ = frame.box
        body += el(
            "line", x1=x0, x2=x1, y1=frame.y(0), y2=frame.y(0), stroke="#d62728", stroke_dasharray=4
        )
    dots = "".join(
        el("circle", cx=frame.x(x), cy=frame.y(y), r=2.2)
        for x, y in zip(xs, ys, strict=True)
        if frame.inside(x, y)
    )
    body += f"<g fill='{COLOURS[0]}' fill-opacity='0.45'>{dots}</g>"
    return svg(body + (frame.legend(legend) if legend else ""), frame.width, frame.height, label)


def bar_chart(
    items: Sequence[tuple[str, float | None]],
    *,
    reference: float | None = None,
    reference_label: str = "overall",
    unit_scale: bool = False,
    width: float = 460,
    label: str = "",
    max_label: int = 40,
) -> str:
    """Horizontal bars with their values; names get as much room as the longest needs (capped).

    Args:
        items: (name, value) per bar; None draws no bar and writes n/a.
        reference: a dashed vertical line (e.g. the overall value).
        reference_label: written under that line.
        unit_scale: values are scores in [0, 1], drawn against 1.0 (0.93 fills 93%).
        width: total width in pixels.
        label: accessible name.
        max_label: names longer than this are shortened (whole in the tooltip).
    """
    shown = [shorten(name, max_label) for name, _ in items]
    left = 8 + max((len(s) for s in shown), default=4) * _CHAR
    values = [abs(v) for _, v in items if v is not None]
    values += [abs(reference)] if reference is not None else []
    top = max(values, default=1.0) or 1.0
    top = 1.0 if unit_scale and top <= 1.0 else top
    row = 20
    right = 70  # room for the value text after the longest bar
    span = max(width - left - right, 60)
    total_width = left + span + right
    body = ""
    for i, ((name, value), short) in enumerate(zip(items, shown, strict=True)):
        y = 6 + i * row
        length = 0.0 if value is None else span * max(value, 0.0) / top
        body += el(
            "text",
            el("title", html.escape(name)) + html.escape(short),
            x=left - 6,
            y=y + 13,
            text_anchor="end",
        )
        body += el("rect", x=left, y=y + 2, width=length, height=row - 6, fill=COLOURS[0])
        shown_value = "n/a" if value is None else tick_label(value)
        body += text(left + length + 4, y + 13, shown_value, anchor="start")
    height = 12 + row * len(items)
    if reference is not None:
        x = left + span * max(reference, 0.0) / top
        body += el(
            "line",
            el("title", html.escape(reference_label)),
            x1=x,
            x2=x,
            y1=0,
            y2=height,
            stroke=COLOURS[1],
            stroke_dasharray=3,
        )
        body += text(x, height + 12, f"{reference_label} {tick_label(reference)}", fill=COLOURS[1])
        height += 16
    return svg(body, total_width, height, label)


def histogram(
    edges: Sequence[float],
    counts: Sequence[int],
    *,
    width: float = 300,
    height: float = 150,
    x_label: str = "",
    label: str = "",
) -> str:
    """Vertical bars over bin edges, with rows on the y axis."""
    lo, hi = (edges[0], edges[-1]) if len(edges) > 1 else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    top = float(max(counts, default=1) or 1)
    frame = Frame((lo, hi), (0.0, top), width, height, x_label, "rows")
    body = frame.axes()
    for left_edge, right_edge, count in zip(edges[:-1], edges[1:], counts, strict=True):
        x0, x1 = frame.x(left_edge), frame.x(right_edge)
        y = frame.y(count)
        tip = el("title", f"{tick_label(left_edge)} to {tick_label(right_edge)}: {count} rows")
        body += el(
            "rect",
            tip,
            x=x0,
            y=y,
            width=max(x1 - x0 - 1, 1),
            height=frame.y(0) - y,
            fill=COLOURS[0],
        )
    return svg(body, width, height, label)


def heatmap(labels: Sequence[Any], matrix: Sequence[Sequence[int]], label: str = "") -> str:
    """A confusion matrix: rows actual, columns predicted, counts written in each cell."""
    names = [shorten(str(v), 14) for v in labels]
    n = max(len(labels), 1)
    cell = max(min(56, 300 // n), 22)
    left = 26 + max((len(s) for s in names), default=1) * _CHAR
    top_row = 30
    top = max((max(row) for row in matrix if row), default=0) or 1
    body = text(left + cell * n / 2, 12, "predicted")
    body += text(0, 0, "actual", transform=f"translate(12,{top_row + cell * n / 2}) rotate(-90)")
    for i, name in enumerate(names):
        column = shorten(str(labels[i]), max(int(cell // _CHAR), 3))
        body += el(
            "text",
            el("title", html.escape(str(labels[i]))) + html.escape(column),
            x=left + cell * i + cell / 2,
            y=top_row - 6,
            text_anchor="middle",
        )
        body += text(left - 6, top_row + cell * i + cell / 2 + 4, name, anchor="end")
        for j, count in enumerate(matrix[i]):
            shade = int(245 - 180 * count / top)
            x, y = left + cell * j, top_row + cell * i
            fill = f"rgb({shade},{shade},255)"
            body += el("rect", x=x, y=y, width=cell, height=cell, fill=fill, stroke="#fff")
            body += text(x + cell / 2, y + cell / 2 + 4, count)
    return svg(body, left + cell * n + 10, top_row + cell * n + 10, label)
