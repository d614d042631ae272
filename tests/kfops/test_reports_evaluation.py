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
    ):
        assert title in page, title
    assert len(_svgs(page)) == 5
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
    assert f"<td>{lift:.4f}</td>" in page


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
