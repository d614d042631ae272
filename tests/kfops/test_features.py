"""Declarative derived features (kfops.features): the grammar, the checks, the numbers, and a model
that carries them from training into the served fast path."""

import bisect
import math
import pickle

import numpy as np
import pandas as pd
import pytest

from kfops import datasets, errors, features, modelio, parameters
from kfops.serving import errors as serr
from kfops.serving import model as smodel
from kfops.serving import validation
from kfops.train import core
from kfops.validate import infer

SPECS = [
    "tenure_per_charge = tenure_months / monthly_charges",
    "charge_gap = total_charges - monthly_charges",
    "calls_x_charge = support_calls * monthly_charges",
    "signup_year = year(signup_date)",
    "signup_month = month(signup_date)",
    "signup_day = day(signup_date)",
    "signup_weekday = weekday(signup_date)",
    "signup_hour = hour(signup_date)",
    "age_days = days_since(signup_date, '2026-01-01')",
    "log_total = log1p(total_charges)",
    "capped = clip(total_charges, 0, 3000)",
    "tenure_band = bucket(tenure_months, [12, 24, 48])",
    "region_len = length(region)",
    "is_premium = contains(plan, 'prem')",
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("r = a / b", {"name": "r", "op": "ratio", "inputs": ["a", "b"]}),
        ("r=a-b", {"name": "r", "op": "difference", "inputs": ["a", "b"]}),
        ("r = a * b", {"name": "r", "op": "product", "inputs": ["a", "b"]}),
        ("m = month(t)", {"name": "m", "op": "month", "inputs": ["t"]}),
        (
            "s = days_since(t, '2024-01-01')",
            {
                "name": "s",
                "op": "days_since",
                "inputs": ["t"],
                "since": "2024-01-01T00:00:00+00:00",
            },
        ),
        ("g = days_between(t, u)", {"name": "g", "op": "days_between", "inputs": ["t", "u"]}),
        (
            "c = clip(a, -5, null)",
            {"name": "c", "op": "clip", "inputs": ["a"], "lower": -5.0, "upper": None},
        ),
        (
            "k = bucket(a, [1, 2.5, 1e3])",
            {"name": "k", "op": "bucket", "inputs": ["a"], "edges": [1.0, 2.5, 1000.0]},
        ),
        (
            'q = contains(s, "@gmail.")',
            {"name": "q", "op": "contains", "inputs": ["s"], "substring": "@gmail."},
        ),
    ],
)
def test_expression_and_json_forms_parse_to_the_same_feature(text, expected):
    parsed = features.parse(text)
    assert parsed.to_dict() == expected
    assert features.parse(expected) == parsed  # the pipeline parameter's JSON form


# (spec, fragments of the one-line error); every entry names the feature when it has a name
BAD_SPECS = [
    ("r = a + b", ["'r = a + b'", "cannot read"]),
    ("r = a /", ["'r'", "fn(args)"]),
    ("= a / b", ["expected 'name = expression'"]),
    ("1r = a / b", ["expected 'name = expression'"]),
    ("r = sqrt(a)", ["'r'", "unknown function 'sqrt'"]),
    ("r = __import__('os')", ["'r'", "unknown function '__import__'"]),
    ("r = clip(a)", ["'r'", "clip takes 1 column(s) then lower, upper, got 1"]),
    ("r = clip(a, 5, 1)", ["'r'", "lower is above upper"]),
    ("r = bucket(a, [3, 1])", ["'r'", "strictly increasing"]),
    ("r = bucket(a, [])", ["'r'", "strictly increasing"]),
    ("r = days_since(t, 'now')", ["'r'", "fixed ISO date"]),
    ("r = days_since(t, 'yesterday-ish')", ["'r'", "not an ISO date"]),
    ("r = contains(s, '')", ["'r'", "non-empty string"]),
    ("r = month(t, u)", ["'r'", "month takes 1 column(s), got 2"]),
    ({"name": "r", "op": "ratio", "inputs": ["a"]}, ["'r'", "ratio takes 2 column(s), got 1"]),
    ({"name": "r", "op": "log2", "inputs": ["a"]}, ["'r'", "unknown operation 'log2'"]),
    ({"name": "r", "op": "log1p", "inputs": ["a"], "base": 2}, ["'r'", "no parameter 'base'"]),
    ({"name": "r r", "op": "log1p", "inputs": ["a"]}, ["name must be an identifier"]),
    (["r = log1p(a)", "r = log1p(b)"], ["'r'", "declared more than once"]),
]


@pytest.mark.parametrize("spec,fragments", BAD_SPECS, ids=[str(s) for s, _ in BAD_SPECS])
def test_bad_spec_is_one_line_naming_the_feature(spec, fragments):
    with pytest.raises(errors.ConfigError) as caught:
        features.parse_all(spec if isinstance(spec, list) else [spec])
    message = str(caught.value)
    assert "\n" not in message and caught.value.exit_code == 2
    for fragment in fragments:
        assert fragment in message, message


TYPES = {"a": "float", "n": "int", "t": "datetime", "s": "string", "flag": "bool"}


@pytest.mark.parametrize(
    "spec,fragments",
    [
        ("r = a / missing", ["'r'", "unknown column 'missing'"]),
        ("r = a / label", ["'r'", "not a feature column 'label'"]),
        ("r = month(a)", ["'r'", "month needs a datetime column, 'a' is float"]),
        ("r = log1p(s)", ["'r'", "log1p needs a number column, 's' is string"]),
        ("r = a * flag", ["'r'", "needs a number column, 'flag' is bool"]),
        ("r = length(n)", ["'r'", "length needs a string column, 'n' is int"]),
        ("a = log1p(n)", ["'a'", "clashes with a raw column"]),
        ("label = log1p(n)", ["'label'", "clashes with a raw column"]),
    ],
)
def test_check_against_the_data_names_the_feature(spec, fragments):
    with pytest.raises(errors.ConfigError) as caught:
        features.check(features.parse_all([spec]), TYPES, [*TYPES, "label"])
    for fragment in fragments:
        assert fragment in str(caught.value), str(caught.value)


def _one(spec: str, **columns) -> list:
    out = features.compute(features.parse(spec), {k: np.asarray(v) for k, v in columns.items()})
    assert out.dtype == np.float64
    return out.tolist()


def test_number_features_and_the_missing_policy():
    a = np.array([6.0, 1.0, np.nan, -1.0, 1e308, 3.0])
    b = np.array([3.0, 0.0, 2.0, 4.0, 1e-308, -0.0])
    nan = [math.isnan(v) for v in _one("r = a / b", a=a, b=b)]
    # division by zero (either sign), a missing input and an overflow to inf are all missing
    assert nan == [False, True, True, False, True, True]
    assert _one("r = a / b", a=a, b=b)[0] == 2.0 and _one("r = a / b", a=a, b=b)[3] == -0.25
    assert _one("d = a - b", a=a[:2], b=b[:2]) == [3.0, 1.0]
    assert _one("p = a * b", a=a[:1], b=b[:1]) == [18.0]
    logs = _one("l = log1p(a)", a=np.array([0.0, math.e - 1, -1.0, -2.0]))
    assert logs[:2] == [0.0, pytest.approx(1.0)] and all(map(math.isnan, logs[2:]))
    assert _one("c = clip(a, 0, 2)", a=np.array([-1.0, 1.5, 9.0])) == [0.0, 1.5, 2.0]
    assert _one("c = clip(a, null, 2)", a=np.array([-1.0, 9.0])) == [-1.0, 2.0]


def test_bucket_counts_the_edges_at_or_below_the_value():
    edges = [12.0, 24.0, 48.0]
    values = [-5.0, 11.9, 12.0, 23.0, 24.0, 48.0, 1e9]
    got = _one("k = bucket(a, [12, 24, 48])", a=np.array(values))
    assert got == [float(bisect.bisect_right(edges, v)) for v in values]
    assert math.isnan(_one("k = bucket(a, [1])", a=np.array([np.nan]))[0])


STAMPS = [
    "2020-02-29T23:59:59Z",
    "2021-12-31T12:30:00+02:00",
    "1969-07-20T20:17:40Z",
    "2024-06-03T01:00:00-05:00",
    "2023-01-01T00:00:00",
    None,
]


@pytest.mark.parametrize("part", features.DATE_PARTS)
def test_date_parts_match_pandas_in_utc(part):
    expected = pd.to_datetime(pd.Series(STAMPS), utc=True, format="ISO8601")
    want = getattr(expected.dt, part).astype("float64").tolist()
    got = _one(f"p = {part}(t)", t=np.array(STAMPS, object))
    assert got[:-1] == want[:-1] and math.isnan(got[-1])


def test_elapsed_days_are_fractional_days_in_utc():
    got = _one("s = days_since(t, '2020-03-01T00:00:00Z')", t=np.array(STAMPS[:3], object))
    assert got[0] == pytest.approx(-1 / 86400)
    assert got[1] == pytest.approx(
        (pd.Timestamp("2021-12-31T10:30Z") - pd.Timestamp("2020-03-01T00:00Z")).total_seconds()
        / 86400
    )
    between = _one(
        "g = days_between(t, u)",
        t=np.array(["2024-01-01", None], object),
        u=np.array(["2024-01-03T12:00", "2024-01-01"], object),
    )
    assert between[0] == 2.5 and math.isnan(between[1])


def test_every_datetime_form_gives_the_same_numbers():
    # Training frames hold datetime64 (naive = UTC); the server's validator hands over Timestamps
    # (one row: the fast branch; many: pandas); a file may hold ISO strings.
    naive = pd.to_datetime(
        ["2021-03-04 05:06:07", "1960-01-01", None, "2030-12-31 23:00"], format="ISO8601"
    )
    forms = [
        naive.to_numpy(),
        np.array(list(naive.tz_localize("UTC")), object),  # Timestamps and NaT
        np.array([None if s is pd.NaT else s.isoformat() for s in naive], object),
    ]
    for spec in ("h = hour(t)", "w = weekday(t)", "s = days_since(t, '2000-01-01')", "d = day(t)"):
        results = [np.array(_one(spec, t=f)) for f in forms]
        assert np.isnan(results[0][2]) and np.isfinite(np.delete(results[0], 2)).all()
        for r in results[1:]:
            np.testing.assert_array_equal(r, results[0], err_msg=spec)


def test_string_features_and_missing_strings():
    s = np.array(["premium", "", None, "basic"], object)
    got = _one("n = length(s)", s=s)
    assert got[:2] == [7.0, 0.0] and math.isnan(got[2]) and got[3] == 5.0
    got = _one("q = contains(s, 'prem')", s=s)
    assert got[0] == 1.0 and got[1] == 0.0 and math.isnan(got[2]) and got[3] == 0.0


@pytest.fixture(scope="module")
def churn():
    df = datasets.churn().iloc[:900].reset_index(drop=True)
    return df, infer.infer_schema(df, label="churned")


def _train(churn, estimator="hist_gradient_boosting", specs=SPECS):
    df, sch = churn
    cfg = parameters.build(
        core.TrainConfig,
        label="churned",
        task="classification",
        estimator=estimator,
        search_iterations=1,
        cv_folds=2,
        derived_features=specs,
    )
    return core.train(df.iloc[:700], sch, cfg)


@pytest.fixture(scope="module")
def trained(churn):
    return _train(churn)


def test_the_fitted_pipeline_computes_them_first_and_pickles_with_them(trained, churn):
    df, _ = churn
    assert trained.pipeline.steps[0][0] == "derive"
    assert "signup_date" in trained.feature_names  # a datetime input, no longer only dropped
    assert not any("signup_date" in n for n in trained.notes)
    assert [d["name"] for d in trained.derived_features] == [s.split(" =")[0] for s in SPECS]
    assert trained.metadata()["derived_features"] == trained.derived_features
    test = df.iloc[700:]
    again = pickle.loads(pickle.dumps(trained.pipeline))
    np.testing.assert_array_equal(again.predict_proba(test), trained.pipeline.predict_proba(test))
    derived = trained.pipeline.steps[0][1].transform(test[trained.feature_names])
    assert list(derived.columns[-len(SPECS) :]) == [d["name"] for d in trained.derived_features]


def test_training_twice_gives_the_same_model_bytes(trained, churn, tmp_path):
    again = _train(churn)
    shas = [
        modelio.save_model(r.pipeline, tmp_path / f"{i}.joblib")
        for i, r in enumerate((trained, again))
    ]
    assert shas[0] == shas[1]


def test_bad_spec_fails_before_any_fit(churn):
    with pytest.raises(errors.ConfigError, match="'bad': month needs a datetime column"):
        _train(churn, specs=["bad = month(plan)"])
    with pytest.raises(errors.ConfigError, match="'tenure_months': name clashes"):
        _train(churn, specs=["tenure_months = log1p(total_charges)"])


def _served(result, churn):
    _, sch = churn
    spec = features.model_schema(sch, result.derived_features)
    assert "signup_date" in spec.feature_names  # inferred 'ignore', now an input to send
    return smodel.with_fast_path(smodel.ServedModel("churn", "1", result.pipeline, spec)), spec


def _request(spec, frame):
    columns = {}
    for col in spec.features:
        values = frame[col.name].astype(object).where(frame[col.name].notna(), None).tolist()
        columns[col.name] = [v.isoformat() if hasattr(v, "isoformat") else v for v in values]
    return validation.Validator(spec).validate(columns, len(frame)).arrays


@pytest.mark.parametrize("estimator", ["hist_gradient_boosting", "linear"])
def test_fast_path_answers_as_sklearn_with_zero_fallbacks(trained, churn, estimator):
    result = trained if estimator == "hist_gradient_boosting" else _train(churn, estimator)
    served, spec = _served(result, churn)
    assert served.fast is not None and served.fast_note.startswith("compiled"), served.fast_note
    assert served.fast.inputs == tuple(result.feature_names)
    df, _ = churn
    test = df.iloc[700:]
    arrays = _request(spec, test)
    batch = served.predict(arrays, want_proba=True)
    assert batch.path == smodel.FAST
    want = result.pipeline.predict_proba(test)
    np.testing.assert_allclose(batch.proba, want, rtol=1e-12, atol=1e-15)
    for i in range(0, len(test), 20):
        one = served.predict({k: v[i : i + 1] for k, v in arrays.items()}, want_proba=True)
        assert one.path == smodel.FAST
        np.testing.assert_allclose(one.proba, want[i : i + 1], rtol=1e-12, atol=1e-15)


def test_a_request_sending_a_derived_column_is_refused_naming_it(trained, churn):
    served, spec = _served(trained, churn)
    df, _ = churn
    row = df.iloc[:1]
    columns = {
        c.name: [str(row[c.name].iloc[0])] if c.dtype == "datetime" else row[c.name].tolist()
        for c in spec.features
    }
    columns.pop("monthly_charges")
    columns["tenure_per_charge"] = [1.5]
    checker = validation.Validator(spec, derived=features.derived_inputs(served.pipeline))
    with pytest.raises(serr.InvalidInput) as caught:
        checker.validate(columns, 1)
    text = str(caught.value)
    assert "'tenure_per_charge'" in text and "derived feature" in text
    assert "['tenure_months', 'monthly_charges']" in text
    assert "'monthly_charges'" in text and "missing" in text


@pytest.mark.parametrize(
    "argv,fragments",
    [
        (["--feature", "r = tenure_months +"], ["derived feature 'r = tenure_months +'"]),
        (["--feature", "r = sqrt(tenure_months)"], ["'r'", "unknown function 'sqrt'"]),
        (["--features-file", "absent.yaml"], ["cannot read features file absent.yaml"]),
        (["--features-file", "bad.json"], ["features file bad.json does not parse"]),
        (["--features-file", "specs.yaml", "--feature", "r = log1p(a)"], ["'r'", "more than once"]),
        # the pipeline parameter itself goes through the same one parse, not only the flags
        (["--param", 'derived_features=["r = sqrt(a)"]'], ["'r'", "unknown function 'sqrt'"]),
        (["--param", 'derived_features=["r = a / b", "r = log1p(a)"]'], ["more than once"]),
    ],
)
def test_cli_refuses_a_bad_spec_in_one_line_before_any_step(
    argv, fragments, tmp_path, capsys, monkeypatch
):
    from kfops import cli  # noqa: PLC0415

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text("[{", encoding="utf-8")
    (tmp_path / "specs.yaml").write_text("r: log1p(total_charges)\n", encoding="utf-8")
    capsys.readouterr()
    code = cli.main(["run", "--store", str(tmp_path / "store"), "--runs-dir", "runs", *argv])
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == errors.ConfigError.exit_code
    assert len(lines) == 1 and lines[0].startswith("kfops: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not (tmp_path / "runs").exists()


def test_spec_files_in_yaml_and_json_give_the_same_features(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "tenure_per_charge: tenure_months / monthly_charges\n"
        "band: {op: bucket, inputs: [tenure_months], edges: [12, 24]}\n",
        encoding="utf-8",
    )
    (tmp_path / "b.json").write_text(
        '["tenure_per_charge = tenure_months / monthly_charges",'
        ' {"name": "band", "op": "bucket", "inputs": ["tenure_months"], "edges": [12, 24]}]',
        encoding="utf-8",
    )
    a = features.parse_all(features.load_file(str(tmp_path / "a.yaml")))
    b = features.parse_all(features.load_file(str(tmp_path / "b.json")))
    assert a == b and [f.name for f in a] == ["tenure_per_charge", "band"]


def test_monitoring_tests_a_datetime_input_as_a_number():
    # A derived date feature makes its datetime column a served input; the drift monitor must
    # test it (as UTC epoch days) instead of failing on a timestamp column.
    from kfops import logschema, monitor  # noqa: PLC0415

    df = datasets.churn(n_rows=2400, seed=0)
    spec = features.model_schema(
        infer.infer_schema(df, label="churned"), ["m = month(signup_date)"]
    )
    reference = df.iloc[:1200].reset_index(drop=True).assign(**{logschema.PREDICTION: 0})
    cfg = monitor.MonitorConfig(min_rows=100)
    for shift_days, drifted in ((0, False), (3 * 365, True)):
        current = df.iloc[1200:].reset_index(drop=True)
        current["signup_date"] = current["signup_date"] + pd.Timedelta(days=shift_days)
        current[logschema.PREDICTION] = 0
        result = monitor.monitor(reference, current, spec, cfg)
        assert ("signup_date" in result.drifted_columns) is drifted, result.drifted_columns


@pytest.mark.parametrize(
    "values",
    [
        ["premium", "", None, "basic", np.nan, pd.NA, "ünïcödé prem", "日本語prem"],
        ["😀😀", "e\u0301", "prem😀", None],  # astral code points; a combining accent counts 2
        ["prem", 3, 2.5, True, None, ""],  # not text: counted as str(value)
        ["x\ud800y", "prem", None],  # a lone surrogate (JSON "\ud800"): UTF-8 cannot hold it
        [None, np.nan],
        [],
    ],
)
def test_string_features_are_whole_column_and_count_code_points(values):
    """length/contains over a column equal len(str(v)) / needle in str(v) row by row."""
    column = np.array(values, object)
    missing = [v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) for v in values]
    for spec, one in (
        ("n = length(s)", lambda v: float(len(str(v)))),
        ("q = contains(s, 'prem')", lambda v: float("prem" in str(v))),
        ("q = contains(s, 'é')", lambda v: float("é" in str(v))),
    ):
        want = [math.nan if m else one(v) for v, m in zip(values, missing, strict=True)]
        np.testing.assert_array_equal(_one(spec, s=column), want, err_msg=spec)
    fixed = np.array([v for v, m in zip(values, missing, strict=True) if not m], dtype=str)
    want = [float(len(v)) for v in fixed]  # a numpy unicode column, not objects
    np.testing.assert_array_equal(_one("n = length(s)", s=fixed), want)
