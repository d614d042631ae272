"""The evaluation report: verdict first, then who/what was evaluated, metrics, plots, slices.

A standalone HTML page with inline SVG (kfops.reports.svg), so it opens anywhere, including the KFP
UI. The evaluate step renders it with what it knows (the verdict is still pending: the gate runs
next); the gate step renders it again with its blessing and the champion comparison and stores that
as the run's evaluation report; `kfops run` adds the registered version. Input is an `Evaluation`
or its dict form; `blessing` is `Blessing.to_dict()`; `champion` is the champion step's record.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kfops import reports
from kfops.reports import svg

if TYPE_CHECKING:  # annotations only: the gate and push steps render without scikit-learn
    from kfops import evaluate as evaluate_mod

_NONE = "n/a"
# Below this min/max ratio of positive rates across groups the report warns. 0.8 is the
# "four-fifths rule" of US employment-selection guidance (29 CFR 1607.4(D)).
FOUR_FIFTHS = 0.8
_IDENTITY = (
    ("run_id", "run"),
    ("model", "model"),
    ("model_sha256", "model sha256"),
    ("data_source", "data source"),
    ("data_sha256", "training data sha256"),
    ("test_sha256", "test data sha256"),
)


def evaluation_html(
    evaluation: evaluate_mod.Evaluation | Mapping[str, Any],
    *,
    identity: Mapping[str, Any] | None = None,
    blessing: Mapping[str, Any] | None = None,
    champion: Mapping[str, Any] | None = None,
) -> str:
    """The full report.

    Args:
        evaluation: the candidate's evaluation.
        identity: run_id, model_name, model_version, model_sha256, data_source, data_sha256,
            test_sha256 (any may be missing).
        blessing: the gate's decision; None while it is not known yet.
        champion: the champion step's record ({"exists", "version", "comparable", "reason",
            "evaluation"}); None when unknown.
    """
    ev = _as_dict(evaluation)
    parts = [
        _verdict_html(blessing),
        _identity_html(ev, identity or {}, champion, blessing),
        _metrics_html(ev, champion),
        _checks_html(blessing),
        _plots_html(ev),
        _slices_html(ev),
        _explanations_html(ev),
        _fairness_html(ev, blessing),
        _notes_html(ev),
    ]
    return reports.html_page("Model evaluation", "".join(p for p in parts if p))


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
    out.append(explanations_markdown(ev))
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


def _esc(value: Any) -> str:
    return html.escape(str(value))


# -- verdict, identity, metrics ---------------------------------------------------------------


def _verdict_html(blessing: Mapping[str, Any] | None) -> str:
    if blessing is None:
        return (
            "<div class='verdict pending'><b>Verdict pending.</b> The gate step decides after "
            "evaluation; the run's final evaluation report (kfops run, kfops ui) carries its "
            "verdict, reasons and the champion comparison.</div>"
        )
    blessed = bool(blessing.get("blessed"))
    head = "BLESSED" if blessed else "NOT BLESSED"
    reasons = blessing.get("reasons") or []
    notes = blessing.get("notes") or []
    items = "".join(f"<li>{_esc(r)}</li>" for r in reasons)
    items += "".join(f"<li class='note'>{_esc(n)}</li>" for n in notes)
    why = f"<ul>{items}</ul>" if items else ""
    kind = "ok" if blessed else "bad"
    summary = "every gate rule passed" if blessed else f"{len(reasons)} gate rule(s) failed"
    return f"<div class='verdict {kind}'><b>{head}</b>: {summary}.{why}</div>"


def _identity_html(
    ev: Mapping[str, Any],
    identity: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    blessing: Mapping[str, Any] | None,
) -> str:
    facts = dict(identity)
    name, version = facts.get("model_name"), facts.get("model_version")
    if version:
        facts["model"] = f"{name or ''} v{version}"
    elif name:
        facts["model"] = f"{name}, candidate: " + (
            "not registered (not blessed)"
            if blessing is not None and not blessing.get("blessed")
            else "the registry numbers the version when it is pushed"
        )
    rows = [(title, facts[key]) for key, title in _IDENTITY if facts.get(key)]
    rows.append(("task", f"{ev['task']}, {ev['n_rows']} test rows"))
    if ev.get("positive_label") is not None:
        rule = ev.get("decision") or {}
        why = f" ({rule['positive_rule']})" if rule.get("positive_rule") else ""
        rows.append(("positive class", repr(ev["positive_label"]) + why))
        if rule.get("labels"):
            rows.append(("predicted labels", rule["labels"]))
    if champion is not None:
        rows.append(("champion", _champion_line(champion)))
    return "<h2>What was evaluated</h2>" + reports.html_table(["", ""], rows, header_row=False)


def _champion_line(champion: Mapping[str, Any]) -> str:
    if not champion.get("exists"):
        return "none yet (first version): no comparison"
    version = champion.get("version")
    if not champion.get("comparable"):
        return f"v{version}, not comparable: {champion.get('reason')}"
    return f"v{version}, scored on the same test rows"


def _comparable(champion: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if champion and champion.get("exists") and champion.get("comparable"):
        return champion.get("evaluation") or None
    return None


def _summary_rows(ev: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    base = ev.get("baseline_metrics") or {}
    rows = []
    for name, value in ev["metrics"].items():
        other = base.get(name)
        lift = value - other if value is not None and other is not None else None
        rows.append((name, _cell(value), _cell(other), _cell(lift)))
    return rows


def _metrics_html(ev: Mapping[str, Any], champion: Mapping[str, Any] | None) -> str:
    header = ["metric", "model", "baseline", "lift"]
    rows = _summary_rows(ev)
    theirs = _comparable(champion)
    if theirs is not None:
        header += [f"champion v{champion.get('version')}", "vs champion"]
        other = theirs.get("metrics") or {}
        rows = [
            (
                *row,
                _cell(other.get(row[0])),
                _cell(_minus(ev["metrics"].get(row[0]), other.get(row[0]))),
            )
            for row in rows
        ]
    note = (
        "<p class='small'>lift = model - baseline (a Dummy model: majority class or mean); "
        "lower is better for log_loss, brier, mae and rmse.</p>"
    )
    return "<h2>Metrics on the test split</h2>" + reports.html_table(header, rows) + note


def _minus(a: Any, b: Any) -> float | None:
    return a - b if isinstance(a, int | float) and isinstance(b, int | float) else None


def _checks_html(blessing: Mapping[str, Any] | None) -> str:
    checks = (blessing or {}).get("checks") or []
    if not checks:
        return ""
    ordered = sorted(checks, key=lambda c: bool(c.get("passed")))  # failures first
    rows = "".join(
        f"<tr><td>{_esc(c.get('rule'))}</td>"
        f"<td class='{'ok' if c.get('passed') else 'bad'}'>"
        f"{'pass' if c.get('passed') else 'FAIL'}</td><td>{_esc(c.get('detail'))}</td></tr>"
        for c in ordered
    )
    head = "<tr><th>rule</th><th>result</th><th>detail</th></tr>"
    return f"<h2>Gate checks</h2><table><thead>{head}</thead><tbody>{rows}</tbody></table>"


# -- plots ------------------------------------------------------------------------------------


def _plots_html(ev: Mapping[str, Any]) -> str:
    curves = ev.get("curves") or {}
    plots = []
    if "roc" in curves:
        plots.append(_figure("ROC curve", _roc(ev, curves["roc"])))
    if "pr" in curves:
        plots.append(_figure("Precision-recall", _pr(ev, curves)))
    if "points" in curves:
        plots += _regression_points(curves["points"])
    if "calibration" in curves:
        plots.append(_figure("Calibration", _calibration(curves["calibration"])))
    if "confusion" in curves:
        confusion = curves["confusion"]
        chart = svg.heatmap(confusion["labels"], confusion["matrix"], "confusion matrix")
        plots.append(_figure("Confusion matrix", chart))
    if not plots:
        return ""
    return "<h2>Curves</h2><div class='plots'>" + "".join(plots) + "</div>"


def _auc_name(ev: Mapping[str, Any], curve: Mapping[str, Any], metric: str, short: str) -> str:
    """The legend entry: the metric when the curve is the positive class's, else its average."""
    average = str(curve.get("average") or "")
    value = (ev.get("metrics") or {}).get(metric)
    if average.startswith("positive class") and value is not None:
        return f"model ({short} {value:.3f})"
    return f"model, {average or 'curve'}"


def _roc(ev: Mapping[str, Any], roc: Mapping[str, Any]) -> str:
    frame = svg.Frame(
        (0.0, 1.0), (0.0, 1.0), x_label="false positive rate", y_label="true positive rate"
    )
    series = [(_auc_name(ev, roc, "roc_auc", "AUC"), roc["fpr"], roc["tpr"])]
    chance = [("chance (AUC 0.500)", [0.0, 1.0], [0.0, 1.0])]
    return svg.line_plot(frame, series, references=chance, label="ROC curve")


def _pr(ev: Mapping[str, Any], curves: Mapping[str, Any]) -> str:
    pr = curves["pr"]
    frame = svg.Frame((0.0, 1.0), (0.0, 1.0), x_label="recall", y_label="precision")
    series = [(_auc_name(ev, pr, "pr_auc", "AP"), pr["recall"], pr["precision"])]
    prevalence = _prevalence(ev, curves)
    refs = []
    if prevalence is not None:
        refs.append((f"no skill (positives {prevalence:.3f})", [0.0, 1.0], [prevalence] * 2))
    return svg.line_plot(frame, series, references=refs, label="precision-recall curve")


def _prevalence(ev: Mapping[str, Any], curves: Mapping[str, Any]) -> float | None:
    confusion = curves.get("confusion") or {}
    labels, matrix = confusion.get("labels") or [], confusion.get("matrix") or []
    positive = ev.get("positive_label")
    if positive not in labels or not matrix:
        return None
    total = sum(map(sum, matrix))
    return sum(matrix[labels.index(positive)]) / total if total else None


def _regression_points(points: Mapping[str, Any]) -> list[str]:
    predicted, actual = points.get("predicted") or [], points.get("actual") or []
    if not predicted:
        return []
    shown = f"{len(predicted)} of {points.get('rows', len(predicted))} test rows"
    lo, hi = svg.padded_range([*predicted, *actual])
    frame = svg.Frame((lo, hi), (lo, hi), x_label="predicted", y_label="actual")
    scatter = svg.scatter_plot(
        frame,
        predicted,
        actual,
        diagonal=True,
        label="predicted vs actual",
        legend=[("perfect prediction", "#aaa")],
    )
    residuals = [a - p for p, a in zip(predicted, actual, strict=True)]
    r_lo, r_hi = svg.padded_range([*residuals, 0.0])
    x_lo, x_hi = svg.padded_range(predicted)
    frame = svg.Frame(
        (x_lo, x_hi), (r_lo, r_hi), x_label="predicted", y_label="residual (actual - predicted)"
    )
    resid = svg.scatter_plot(frame, predicted, residuals, zero_line=True, label="residuals")
    return [
        _figure(f"Predicted vs actual ({shown})", scatter),
        _figure(f"Residuals ({shown})", resid),
    ]


def _calibration(calibration: Mapping[str, Any]) -> str:
    bins = calibration.get("bins") or []
    xs = [b["mean_predicted"] for b in bins]
    if calibration.get("kind") == "regression":
        ys = [b["mean_actual"] for b in bins]
        lo, hi = svg.padded_range([*xs, *ys])
        frame = svg.Frame(
            (lo, hi),
            (lo, hi),
            x_label="mean predicted (decile of predictions)",
            y_label="mean actual",
        )
        return svg.line_plot(frame, [("model", xs, ys)], diagonal=True, label="calibration")
    ys = [b["fraction_positive"] for b in bins]
    y_label = "fraction positive" if calibration.get("kind") == "positive" else "accuracy"
    frame = svg.Frame((0.0, 1.0), (0.0, 1.0), x_label="mean predicted probability", y_label=y_label)
    return svg.line_plot(frame, [("model", xs, ys)], diagonal=True, label="calibration")


def _figure(title: str, chart: str) -> str:
    return f"<figure><figcaption><b>{html.escape(title)}</b></figcaption>{chart}</figure>"


# -- slices, fairness, notes -------------------------------------------------------------------


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
    chart = ""
    if bars:
        drawn = svg.bar_chart(
            bars,
            reference=ev["metrics"].get(key),
            unit_scale=key != "mae",
            reference_label=f"overall {key}",
            label=f"{key} per slice",
        )
        chart = _figure(f"{key} per slice", chart=drawn)
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


def _gate_gap(blessing: Mapping[str, Any] | None, gaps: Sequence[tuple[Any, ...]]) -> str:
    """Which gap the gate bounded, read from its fairness check (or the gate's default)."""
    for check in (blessing or {}).get("checks") or []:
        if str(check.get("rule", "")).startswith("fairness"):
            detail = str(check.get("detail"))
            used = next((g for g, _ in gaps if str(g) in detail), None)
            verdict = "passed" if check.get("passed") else "FAILED"
            return f"The gate bounded {used or 'a gap'}: {detail} ({verdict})."
    if blessing is not None:
        return "The gate checked no fairness gap on this run."
    from kfops import gate  # noqa: PLC0415 (only for the default's name)

    default = getattr(gate.GateConfig(), "fairness_metric", "")
    return f"The gate bounds {default or 'a fairness gap'} by default; its verdict is pending."


def _ratio_warning(fairness: Mapping[str, Any]) -> str:
    ratio = fairness.get("positive_rate_ratio")
    groups = {
        g: v.get("positive_rate")
        for g, v in (fairness.get("groups") or {}).items()
        if not v.get("too_small") and v.get("positive_rate") is not None
    }
    if ratio is None or ratio >= FOUR_FIFTHS or len(groups) < 2:
        return ""
    low = min(groups, key=groups.get)
    high = max(groups, key=groups.get)
    fold = "" if ratio <= 0 else f"{1 / ratio:.1f}x "
    return (
        f"<p class='warning'>Warning: the positive rate is {fold}higher in {_esc(high)} "
        f"({groups[high]:.3f}) than in {_esc(low)} ({groups[low]:.3f}); the ratio "
        f"{ratio:.3f} is below the four-fifths rule's {FOUR_FIFTHS}.</p>"
    )


def _fairness_html(ev: Mapping[str, Any], blessing: Mapping[str, Any] | None) -> str:
    header, rows, gaps = _fairness_tables(ev)
    if not rows:
        return ""
    fairness = ev["fairness"]
    column = _esc(fairness["column"])
    used = f"<p><b>{_esc(_gate_gap(blessing, gaps))}</b></p>"
    note = "<p class='small'>Groups flagged too small are shown but left out of the gaps.</p>"
    return (
        f"<h2>Fairness across {column}</h2>{_ratio_warning(fairness)}{used}"
        + reports.html_table(header, rows)
        + reports.html_table(["gap", "value"], gaps)
        + note
    )


# -- explanations (kfops.evaluate.explain) ----------------------------------------------------


def _importance_table(ev: Mapping[str, Any]) -> tuple[str, list[str], list[tuple[Any, ...]]]:
    """(caption, header, rows) of permutation importance; empty rows when not computed."""
    imp = (ev.get("explanations") or {}).get("importance") or {}
    rows = [
        (r["feature"], r["kind"], _cell(r["mean"]), _cell(r["std"]))
        for r in imp.get("features", [])
    ]
    if not rows:
        return "", [], []
    caption = (
        f"Drop in {imp['metric']} (from {reports.fmt(_cell(imp.get('score')))}) when one column is "
        f"shuffled; mean and spread over {imp['repeats']} shuffles of a seeded sample of "
        f"{imp['rows']} of {imp['of_rows']} test rows (seed {imp['seed']}). Near zero or "
        "negative: the model does not rely on the column."
    )
    return caption, ["feature", "kind", f"{imp['metric']} drop", "std"], rows


def _per_class_table(ev: Mapping[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    rows = [
        (repr(r["label"]), r["precision"], r["recall"], r["f1"], r["support"])
        for r in (ev.get("explanations") or {}).get("per_class") or []
    ]
    return ["class", "precision", "recall", "f1", "support"], rows


def _worst_table(ev: Mapping[str, Any]) -> tuple[str, list[str], list[tuple[Any, ...]]]:
    worst = (ev.get("explanations") or {}).get("worst_slices") or {}
    rows = [(w["slice"], w["rows"], _cell(w["value"])) for w in worst.get("slices", [])]
    return worst.get("metric", ""), ["slice", "rows", worst.get("metric", "")], rows


def _wrong_table(ev: Mapping[str, Any]) -> tuple[str, list[str], list[tuple[Any, ...]]]:
    wrong = (ev.get("explanations") or {}).get("confidently_wrong") or {}
    header = list(wrong.get("columns") or [])
    rows = [tuple(_cell(r.get(c)) for c in header) for r in wrong.get("rows") or []]
    if not rows:
        return "", [], []
    if wrong.get("by") == "probability":
        caption = (
            f"The {len(rows)} wrong predictions (of {wrong['errors']}) made with the highest "
            "probability on the predicted class."
        )
    else:
        caption = f"The {len(rows)} test rows (of {wrong['errors']}) with the largest error."
    return caption, header, rows


def _explanations_html(ev: Mapping[str, Any]) -> str:
    out = []
    caption, header, rows = _importance_table(ev)
    if rows:
        bars = [(r[0] + (" (derived)" if r[1] == "derived" else ""), r[2]) for r in rows]
        bars = [(name, v if isinstance(v, int | float) else None) for name, v in bars]
        chart = svg.bar_chart(bars, label="permutation importance")
        out.append(
            "<section id='importance'><h2>Permutation importance</h2>"
            f"<p class='small'>{_esc(caption)}</p>"
            + _figure(f"{header[2]} per shuffled feature", chart)
            + reports.html_table(header, rows)
            + "</section>"
        )
    header, rows = _per_class_table(ev)
    if rows:
        out.append(
            "<section id='per-class'><h2>Per-class metrics</h2>"
            + reports.html_table(header, rows)
            + "</section>"
        )
    metric, header, rows = _worst_table(ev)
    if rows:
        out.append(
            f"<section id='worst-slices'><h2>Worst slices by {_esc(metric)}</h2>"
            + reports.html_table(header, rows)
            + "</section>"
        )
    caption, header, rows = _wrong_table(ev)
    if rows:
        out.append(
            "<section id='confidently-wrong'><h2>Most confidently wrong test rows</h2>"
            f"<p class='small'>{_esc(caption)}</p><div class='wide'>"
            + reports.html_table(header, rows)
            + "</div></section>"
        )
    return "".join(out)


def explanations_markdown(evaluation: evaluate_mod.Evaluation | Mapping[str, Any]) -> str:
    """The explanations as Markdown (model card): importance, per-class, worst slices, errors."""
    ev = _as_dict(evaluation)
    out = []
    caption, header, rows = _importance_table(ev)
    if rows:
        out.append(
            f"\n### Permutation importance\n\n{caption}\n\n" + reports.md_table(header, rows)
        )
    header, rows = _per_class_table(ev)
    if rows:
        out.append("\n### Per-class metrics\n\n" + reports.md_table(header, rows))
    metric, header, rows = _worst_table(ev)
    if rows:
        out.append(f"\n### Worst slices by {metric}\n\n" + reports.md_table(header, rows))
    caption, header, rows = _wrong_table(ev)
    if rows:
        out.append(
            f"\n### Most confidently wrong test rows\n\n{caption}\n\n"
            + reports.md_table(header, rows)
        )
    return "".join(out)


def _notes_html(ev: Mapping[str, Any]) -> str:
    notes = ev.get("notes") or []
    if not notes:
        return ""
    return "<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"
