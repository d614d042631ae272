import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from sklearn import dummy

from kfops import evaluate
from kfops.reports import evaluation as report
from tests.kfops.fixed_models import Regressor, Rule


@pytest.fixture(scope="module")
def classified():
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame(
        {"y": rng.integers(0, 2, n), "region": rng.choice(["north", "south", None], n)}
    )
    df["score"] = np.clip(df["y"] * 0.5 + rng.random(n) * 0.5, 0, 1)
    df.loc[:4, "region"] = "tiny"
    base = dummy.DummyClassifier(strategy="prior").fit(df[["score"]], df["y"])
    cfg = evaluate.EvalConfig("y", "classification", ("region",), sensitive_column="region")
    return evaluate.evaluate(Rule(), df, cfg, baseline=base)


@pytest.fixture(scope="module")
def regressed():
    df = pd.DataFrame({"y": np.arange(60.0), "guess": np.arange(60.0) * 1.1, "g": ["a", "b"] * 30})
    cfg = evaluate.EvalConfig("y", "regression", ("g",), sensitive_column="g")
    return evaluate.evaluate(Regressor(), df, cfg)


def _svgs(page):
    return re.findall(r"<svg.*?</svg>", page, flags=re.S)


def test_evaluation_html_is_a_standalone_page_with_every_plot(classified):
    page = report.evaluation_html(classified)
    assert page.startswith("<!doctype html>")
    for title in (
        "ROC curve",
        "Precision-recall",
        "Calibration",
        "Confusion matrix",
        "roc_auc per slice",
        "Permutation importance",
    ):
        assert title in page, title
    assert len(_svgs(page)) == 6
    assert not re.search(r"(src|href)=['\"]https?:", page)


def test_evaluation_html_svgs_are_well_formed_xml(classified):
    for svg in _svgs(report.evaluation_html(classified)):
        ET.fromstring(svg)


def test_evaluation_html_escapes_slice_names(classified):
    page = report.evaluation_html(classified)
    assert "region=&lt;missing&gt;" in page
    assert "region=<missing>" not in page


def test_evaluation_html_flags_small_slices_and_tables_fairness(classified):
    page = report.evaluation_html(classified)
    assert "too small" in page
    assert "Fairness across region" in page
    assert "positive_rate_difference" in page


def test_evaluation_html_shows_baseline_and_lift(classified):
    page = report.evaluation_html(classified)
    lift = classified.metrics["roc_auc"] - classified.baseline_metrics["roc_auc"]
    assert f"<td class=n>{lift:.4f}</td>" in page


def test_evaluation_html_accepts_the_dict_form(classified):
    assert report.evaluation_html(classified.to_dict()) == report.evaluation_html(classified)


def test_evaluation_html_renders_a_regression_evaluation(regressed):
    page = report.evaluation_html(regressed)
    assert "ROC curve" not in page
    assert "Calibration" in page and "mae per slice" in page
    for svg in _svgs(page):
        ET.fromstring(svg)


def test_evaluation_html_lists_notes():
    df = pd.DataFrame({"y": [1, 1, 1], "score": [0.9, 0.8, 0.4]})
    ev = evaluate.evaluate(Rule(), df, evaluate.EvalConfig("y", "classification"))
    assert "undefined on these rows" in report.evaluation_html(ev)


def test_evaluation_markdown_tables_metrics_slices_and_fairness(classified):
    md = report.evaluation_markdown(classified)
    assert "| metric | model | baseline | lift |" in md
    assert f"| roc_auc | {classified.metrics['roc_auc']:.4f} |" in md
    assert "### Slices" in md and "| region=north |" in md
    assert "### Fairness across `region`" in md
    assert "| recall_difference |" in md


def test_evaluation_markdown_writes_n_a_for_undefined_values():
    df = pd.DataFrame({"y": [1, 1, 1], "score": [0.9, 0.8, 0.4]})
    ev = evaluate.evaluate(Rule(), df, evaluate.EvalConfig("y", "classification"))
    assert "| roc_auc | n/a | n/a | n/a |" in report.evaluation_markdown(ev)


# -- verdict, identity, champion, curves, regression plots, fairness (issue 14) ---------------


def _blessing(blessed, reasons=(), checks=()):
    return {"blessed": blessed, "reasons": list(reasons), "notes": [], "checks": list(checks)}


def test_evaluation_html_without_a_blessing_says_the_verdict_is_pending(classified):
    page = report.evaluation_html(classified)
    assert "Verdict pending" in page
    assert "BLESSED" not in page


def test_evaluation_html_is_headed_by_the_verdict_and_its_reasons(classified):
    reason = "threshold roc_auc: roc_auc 0.6000 must be >= 0.9000"
    check = {"rule": "threshold roc_auc", "passed": False, "detail": reason.split(": ", 1)[1]}
    page = report.evaluation_html(classified, blessing=_blessing(False, [reason], [check]))
    assert page.index("NOT BLESSED") < page.index("Metrics on the test split")
    assert page.index(html_escape(reason)) < page.index("Metrics on the test split")
    assert "Gate checks" in page and "FAIL" in page
    blessed = report.evaluation_html(classified, blessing=_blessing(True))
    assert "BLESSED</b>: every gate rule passed" in blessed and "NOT BLESSED" not in blessed


def test_evaluation_html_names_run_model_version_and_data_source(classified):
    who = {
        "run_id": "run123abc",
        "model_name": "churn",
        "model_version": "7",
        "data_source": "s3://bucket/data.csv",
        "model_sha256": "ab" * 32,
    }
    page = report.evaluation_html(classified, identity=who)
    for text in ("run123abc", "churn v7", "s3://bucket/data.csv", "ab" * 32):
        assert text in page, text


def test_evaluation_html_compares_with_the_champion_metric_by_metric(classified):
    theirs = classified.to_dict()
    theirs["metrics"] = {**theirs["metrics"], "roc_auc": 0.5}
    champion = {"exists": True, "version": "3", "comparable": True, "evaluation": theirs}
    page = report.evaluation_html(classified, champion=champion)
    assert "champion v3" in page and "scored on the same test rows" in page
    delta = classified.metrics["roc_auc"] - 0.5
    assert f"<td class=n>{delta:.4f}</td>" in page
    first = report.evaluation_html(classified, champion={"exists": False})
    assert "none yet (first version)" in first and "vs champion" not in first


def test_evaluation_html_puts_the_auc_in_the_curve_legends(classified):
    page = report.evaluation_html(classified)
    assert f"model (AUC {classified.metrics['roc_auc']:.3f})" in page
    assert f"model (AP {classified.metrics['pr_auc']:.3f})" in page
    assert "chance (AUC 0.500)" in page


def test_evaluation_html_draws_predicted_vs_actual_and_residuals_for_regression(regressed):
    page = report.evaluation_html(regressed)
    assert "Predicted vs actual (60 of 60 test rows)" in page
    assert "Residuals (60 of 60 test rows)" in page
    svgs = _svgs(page)
    scatter = next(s for s in svgs if "predicted vs actual" in s)
    assert scatter.count("<circle") == 60


def test_regression_scatter_points_are_capped_and_seeded():
    from kfops.evaluate import curves

    y = np.arange(5000.0)
    first, second = curves.regression(y, y * 2), curves.regression(y, y * 2)
    points = first["points"]
    assert len(points["predicted"]) == curves.MAX_SCATTER and points["rows"] == 5000
    assert points == second["points"]
    assert all(p == 2 * a for p, a in zip(points["predicted"], points["actual"], strict=True))


def _visible_texts(svg_text):
    """The text each text element shows (its tooltip title left out)."""
    root = ET.fromstring(svg_text)
    out = []
    for node in root.iter("{http://www.w3.org/2000/svg}text"):
        title = node.find("{http://www.w3.org/2000/svg}title")
        content = "".join(node.itertext())
        out.append(content[len(title.text or "") :] if title is not None else content)
    return out


def _text_extents(svg_text):
    """(left, right, width) of each unrotated text element, estimated at 6.2 px per character."""
    root = ET.fromstring(svg_text)
    width = float(root.get("width"))
    out = []
    for node in root.iter("{http://www.w3.org/2000/svg}text"):
        if node.get("transform"):
            continue
        content = "".join(node.itertext())
        if node.find("{http://www.w3.org/2000/svg}title") is not None:
            content = content[len(node.find("{http://www.w3.org/2000/svg}title").text or "") :]
        x, span = float(node.get("x")), len(content) * 6.2
        anchor = node.get("text-anchor")
        left = x - span if anchor == "end" else x - span / 2 if anchor == "middle" else x
        out.append((left, left + span, width))
    return out


def test_evaluation_html_keeps_large_tick_labels_and_long_slice_names_inside_the_plots():
    n = 80
    names = ["a-rather-long-neighbourhood-name", "short"]
    df = pd.DataFrame(
        {
            "y": np.linspace(1e5, 9e6, n),
            "guess": np.linspace(1e5, 9e6, n) * 1.05,
            "g": [names[i % 2] for i in range(n)],
        }
    )
    ev = evaluate.evaluate(Regressor(), df, evaluate.EvalConfig("y", "regression", ("g",)))
    page = report.evaluation_html(ev)
    bars = next(s for s in _svgs(page) if "mae per slice" in s)
    assert f"g={names[0]}" in _visible_texts(bars)  # the whole name, not cut
    for svg in _svgs(page):
        for left, right, width in _text_extents(svg):
            assert left >= 0 and right <= width + 1, (left, right, width, svg[:200])


def _fair(rates, column="grp"):
    groups = {
        g: {"rows": 100, "too_small": False, "positive_rate": r, "recall": 0.5}
        for g, r in rates.items()
    }
    low, high = min(rates.values()), max(rates.values())
    return {
        "task": "classification",
        "n_rows": 200,
        "metrics": {"roc_auc": 0.8},
        "baseline_metrics": {"roc_auc": 0.5},
        "slices": {},
        "curves": {},
        "fairness": {
            "column": column,
            "groups": groups,
            "positive_rate_difference": high - low,
            "positive_rate_ratio": low / high,
            "recall_difference": 0.0,
            "recall_ratio": 1.0,
        },
        "notes": [],
    }


def test_evaluation_html_warns_when_positive_rates_differ_several_fold():
    page = report.evaluation_html(_fair({"a": 0.1, "b": 0.4}))
    assert "Warning: the positive rate is 4.0x higher in b (0.400) than in a (0.100)" in page
    assert "Warning" not in report.evaluation_html(_fair({"a": 0.35, "b": 0.4}))


def test_evaluation_html_says_which_fairness_gap_the_gate_used():
    check = {"rule": "fairness grp", "passed": True,
             "detail": "recall_difference across grp 0.0000 vs limit 0.2500"}  # fmt: skip
    page = report.evaluation_html(
        _fair({"a": 0.1, "b": 0.4}), blessing=_blessing(True, (), [check])
    )
    assert "The gate bounded recall_difference: recall_difference across grp" in page
    from kfops import gate

    pending = report.evaluation_html(_fair({"a": 0.1, "b": 0.4}))
    assert f"The gate bounds {gate.GateConfig().fairness_metric} by default" in pending


def html_escape(text):
    import html

    return html.escape(text)


def test_tick_labels_stay_short_and_readable_for_large_values():
    from kfops.reports import svg

    shown = [svg.tick_label(v) for v in (0, 0.25, 950, 9999, 23620.08, 500_000, 1e6, -150_000)]
    assert shown == ["0", "0.25", "950", "9999", "23.6k", "500k", "1M", "-150k"]
    assert svg.nice_ticks(0, 1e6) == [0, 250_000, 500_000, 750_000, 1_000_000]
