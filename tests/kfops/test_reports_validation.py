"""The validation report: anomalies first, the schema, per-column statistics and distributions."""

import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from kfops import validate
from kfops.reports import profile
from kfops.reports import validation as report


@pytest.fixture(scope="module")
def checked():
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame(
        {
            "customer": [f"c{i}" for i in range(n)],
            "age": rng.integers(18, 80, n).astype(float),
            "plan": rng.choice(["basic", "premium", "standard"], n, p=[0.6, 0.3, 0.1]),
            "calls": rng.integers(0, 5, n),
            "y": rng.integers(0, 2, n),
        }
    )
    df.loc[:9, "age"] = np.nan
    expected = validate.infer_schema(df, "y")
    bad = df.copy()
    bad["plan"] = "basic"  # a constant feature: blocking
    bad.loc[:3, "age"] = 500.0  # out of range: a warning
    result = validate.validate(bad, expected, validate.ValidateConfig(range_severity="warning"))
    return df, bad, expected, result


def _svgs(page):
    return re.findall(r"<svg.*?</svg>", page, flags=re.S)


def test_profile_counts_missing_values_and_describes_numbers(checked):
    df, _, expected, _ = checked
    age = next(c for c in profile.profile(df, expected) if c["name"] == "age")
    assert age["kind"] == "numeric" and age["missing"] == 10
    assert age["mean"] == pytest.approx(df["age"].mean())
    assert age["median"] == pytest.approx(df["age"].median())
    assert sum(age["histogram"]["counts"]) == len(df) - 10


def test_profile_lists_top_categories_most_frequent_first(checked):
    df, _, expected, _ = checked
    plan = next(c for c in profile.profile(df, expected) if c["name"] == "plan")
    counts = df["plan"].value_counts()
    assert plan["top"] == [[v, int(c)] for v, c in counts.items()]
    assert plan["other"] == 0


def test_profile_gives_small_whole_numbers_one_bin_each(checked):
    df, _, expected, _ = checked
    calls = next(c for c in profile.profile(df, expected) if c["name"] == "calls")
    assert calls["histogram"]["edges"] == [-0.5, 0.5, 1.5, 2.5, 3.5, 4.5]
    assert calls["histogram"]["counts"] == [int((df["calls"] == v).sum()) for v in range(5)]


def test_validation_html_lists_blocking_anomalies_before_warnings_and_statistics(checked):
    _, bad, expected, result = checked
    page = report.validation_html(result, expected, bad)
    assert "FAILED" in page
    blocking = page.index(">error<")
    warning = page.index(">warning<")
    assert blocking < warning < page.index("<h2>Schema</h2>") < page.index("<h2>Statistics</h2>")


def test_validation_html_shows_the_schema_of_every_column(checked):
    _, bad, expected, result = checked
    page = report.validation_html(result, expected, bad)
    schema_part = page.split("<h2>Schema</h2>", 1)[1].split("<h2>", 1)[0]
    for column in expected.columns:
        assert f"<td>{column.name}</td><td>{column.dtype}</td><td>{column.role}</td>" in schema_part


def test_validation_html_draws_a_distribution_per_column_but_not_for_ids(checked):
    df, _, expected, result = checked
    page = report.validation_html(result, expected, df)
    svgs = _svgs(page)
    labels = [ET.fromstring(s).get("aria-label") for s in svgs]
    assert labels == [
        "histogram of age",
        "top values of plan",
        "histogram of calls",
        "histogram of y",
    ]


def test_validation_html_puts_flagged_columns_first_in_statistics(checked):
    _, bad, expected, result = checked
    page = report.validation_html(result, expected, bad)
    categorical = page.split("Categorical, text and time columns", 1)[1]
    assert categorical.index("⚠ plan") < categorical.index("customer")


def test_validation_html_is_self_contained(checked):
    _, bad, expected, result = checked
    page = report.validation_html(result, expected, bad)
    assert not re.search(r"(src|href)=['\"]?https?:", page)
    assert "<script" not in page


def test_validation_html_without_data_still_renders_the_anomalies(checked):
    _, _, _, result = checked
    page = report.validation_html(result)
    assert "constant" in page and "<h2>Schema</h2>" not in page
