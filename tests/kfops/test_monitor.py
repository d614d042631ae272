import datetime as dt
import html.parser
import json

import numpy as np
import pandas as pd
import pytest

from kfops import errors, logschema, monitor, schema
from kfops.monitor import core, reference, window
from kfops.store import local
from tests.fixtures.monitoring import as_log, make_frame, register_model, scored_log, write_logs


def _config(**kw):
    # These five-feature frames were written for a 0.3 share (two of five); the default is
    # tuned for wider models (tests/kfops/test_monitor_boundary.py).
    return monitor.MonitorConfig(**{"min_rows": 100, "drift_share_threshold": 0.3, **kw})


# --- decisions -------------------------------------------------------------------------------


def test_monitor_retrains_when_drift_injected_in_several_features(reference, data_schema):
    current = as_log(make_frame(1000, seed=1, shift=("tenure", "charges")))
    result = monitor.monitor(reference, current, data_schema, _config())
    assert result.retrain
    assert set(result.drifted_columns) == {"tenure", "charges"}
    assert result.drift_share == pytest.approx(0.4)
    assert any("drift share 0.40 >= threshold 0.30" in r for r in result.reasons)


def test_monitor_does_not_retrain_without_drift(reference, data_schema):
    current = as_log(make_frame(1000, seed=2))
    result = monitor.monitor(reference, current, data_schema, _config())
    assert result.status == "judged"
    assert not result.retrain
    assert result.reasons == ()
    assert result.drifted_columns == ()
    assert all(d.score < d.threshold for d in result.columns.values())


def test_monitor_retrains_when_key_column_drifts_alone(reference, data_schema):
    current = as_log(make_frame(1000, seed=3, shift=("region",)))
    plain = monitor.monitor(reference, current, data_schema, _config())
    keyed = monitor.monitor(reference, current, data_schema, _config(key_columns=("region",)))
    assert plain.drifted_columns == ("region",) and not plain.retrain  # 1 of 5 < 0.3
    assert keyed.retrain
    assert (
        keyed.reasons == (keyed.reasons[0],) and "key column 'region' drifted" in keyed.reasons[0]
    )


def test_monitor_tests_prediction_drift_and_can_key_on_it(reference, data_schema):
    current = as_log(make_frame(1000, seed=4, shift=("calls",)))
    cfg = _config(key_columns=(logschema.PROBA,))
    result = monitor.monitor(reference, current, data_schema, cfg)
    assert set(result.prediction_drift) == {logschema.PREDICTION, logschema.PROBA}
    assert result.prediction_drift[logschema.PROBA].drifted
    assert any(logschema.PROBA in r for r in result.reasons)


def test_monitor_retrains_when_labelled_quality_below_floor(reference, data_schema):
    current = as_log(make_frame(800, seed=5))
    rng = np.random.default_rng(0)
    wrong = 1 - current[logschema.PREDICTION].to_numpy()
    truth = np.where(rng.random(800) < 0.7, wrong, 1 - wrong)  # predictions now 30% right
    labels = pd.DataFrame({logschema.REQUEST_ID: current[logschema.REQUEST_ID], "churned": truth})
    cfg = _config(quality_metric="accuracy", quality_floor=0.8)
    result = monitor.monitor(reference, current, data_schema, cfg, labels)
    assert result.drifted_columns == ()
    assert result.labelled_rows == 800
    assert result.quality["accuracy"] == pytest.approx(
        float((truth == current[logschema.PREDICTION]).mean())
    )
    assert result.retrain
    assert result.reasons == (f"accuracy {result.quality['accuracy']:.4f} below floor 0.8",)


def test_monitor_keeps_model_when_labelled_quality_is_good(reference, data_schema):
    current = as_log(make_frame(800, seed=6))
    labels = pd.DataFrame(
        {
            logschema.REQUEST_ID: current[logschema.REQUEST_ID],
            "churned": current[logschema.PREDICTION],
        }
    )
    cfg = _config(quality_metric="f1", quality_floor=0.9)
    result = monitor.monitor(reference, current, data_schema, cfg, labels)
    assert result.quality["accuracy"] == 1.0 and result.quality["f1"] == 1.0
    assert "roc_auc" in result.quality
    assert not result.retrain


def test_monitor_notes_when_too_few_labels_to_judge_quality(reference, data_schema):
    current = as_log(make_frame(500, seed=7))
    labels = pd.DataFrame({logschema.REQUEST_ID: current[logschema.REQUEST_ID][:20], "churned": 0})
    cfg = _config(quality_metric="accuracy", quality_floor=0.99)
    result = monitor.monitor(reference, current, data_schema, cfg, labels)
    assert not result.retrain and result.quality == {}
    assert result.notes == ("quality not judged: 20 labelled rows < min_rows 100",)


def test_monitor_judges_regression_error_against_a_ceiling():
    cols = (schema.ColumnSpec("x", "float"), schema.ColumnSpec("y", "float", role="label"))
    reg_schema = schema.Schema(cols, "y", "regression")
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=500)})
    cur = pd.DataFrame(
        {"x": rng.normal(size=500), logschema.REQUEST_ID: [str(i) for i in range(500)]}
    )
    cur[logschema.PREDICTION] = cur["x"] * 2
    labels = pd.DataFrame(
        {
            logschema.REQUEST_ID: cur[logschema.REQUEST_ID],
            "y": cur["x"] * 2 + rng.uniform(2.5, 3.5, 500),
        }
    )
    cfg = _config(quality_metric="mae", quality_floor=1.0)
    result = monitor.monitor(ref, cur, reg_schema, cfg, labels)
    assert result.quality["mae"] == pytest.approx(3.0, abs=0.05)
    assert result.reasons == (f"mae {result.quality['mae']:.4f} above ceiling 1",)


# --- edge cases ------------------------------------------------------------------------------


def test_monitor_reports_no_data_when_window_empty(reference, data_schema):
    result = monitor.monitor(reference, pd.DataFrame(), data_schema, _config())
    assert (result.status, result.retrain, result.rows) == ("no_data", False, 0)
    assert result.notes == ("no data in window",)
    assert "no data in window" in result.html


def test_monitor_says_sample_too_small_when_window_tiny(reference, data_schema):
    result = monitor.monitor(
        reference, as_log(make_frame(30, shift=("tenure",))), data_schema, _config()
    )
    assert (result.status, result.retrain) == ("too_small", False)
    assert result.notes == ("sample too small to judge: 30 rows < min_rows 100",)


def test_monitor_names_missing_and_unknown_columns(reference, data_schema):
    current = as_log(make_frame(200)).drop(columns=["plan"]).assign(coupon="x")
    with pytest.raises(errors.SchemaViolation) as e:
        monitor.monitor(reference, current, data_schema, _config())
    assert e.value.column == "plan, coupon"
    assert "missing features ['plan']" in str(e.value) and "['coupon']" in str(e.value)


def test_monitor_names_numeric_feature_that_holds_text(reference, data_schema):
    current = as_log(make_frame(200)).assign(charges="cheap")
    with pytest.raises(errors.SchemaViolation, match="'charges' violates dtype"):
        monitor.monitor(reference, current, data_schema, _config())


def test_monitor_rejects_key_column_it_cannot_test(reference, data_schema):
    with pytest.raises(errors.ConfigError, match=r"key columns \['nope'\]"):
        monitor.monitor(
            reference, as_log(make_frame(200)), data_schema, _config(key_columns=("nope",))
        )


def test_monitor_samples_long_window_and_states_error_bound(reference, data_schema):
    current = as_log(make_frame(3000, seed=8, shift=("tenure", "plan")))
    result = monitor.monitor(reference, current, data_schema, _config(sample_size=1000))
    assert (result.rows, result.judged_rows) == (3000, 1000)
    assert result.sample_error_bound == pytest.approx(
        monitor.sample_error_bound(1000, 0.01), abs=1e-6
    )
    assert set(result.drifted_columns) == {"tenure", "plan"}


def test_monitor_gives_same_verdict_for_same_data_and_seed(reference, data_schema):
    current = as_log(make_frame(3000, seed=9, shift=("calls",)))
    cfg = _config(sample_size=500)
    first = monitor.monitor(reference, current, data_schema, cfg).to_dict()
    assert monitor.monitor(reference, current, data_schema, cfg).to_dict() == first


def test_monitor_html_report_is_a_page_with_decision_and_evidently(
    reference, data_schema, tmp_path
):
    result = monitor.monitor(
        reference, as_log(make_frame(500, shift=("tenure",))), data_schema, _config()
    )
    page = tmp_path / "report.html"
    page.write_text(result.html, encoding="utf-8")
    parser = _Tags()
    parser.feed(page.read_text(encoding="utf-8"))
    assert parser.tags[:3] == ["html", "head", "meta"]
    assert "iframe" in parser.tags and "Per-column drift" in result.html
    assert "tenure" in parser.srcdoc[0] and "<html" in parser.srcdoc[0]
    assert json.loads(json.dumps(result.to_dict()))["retrain"] == result.retrain


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.srcdoc = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.srcdoc += [v for k, v in attrs if k == "srcdoc"]


# --- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all", monitor.Window()),
        ("last:250", monitor.Window(last_rows=250)),
        ("24h", monitor.Window(start=dt.datetime(2024, 5, 1, tzinfo=dt.UTC))),
        (
            "2024-04-01..2024-04-03",
            monitor.Window(dt.datetime(2024, 4, 1), dt.datetime(2024, 4, 3)),
        ),
        ("..2024-04-03", monitor.Window(end=dt.datetime(2024, 4, 3, tzinfo=dt.UTC))),
    ],
)
def test_window_parse_reads_each_form(text, expected):
    assert monitor.Window.parse(text, now=dt.datetime(2024, 5, 2, tzinfo=dt.UTC)) == expected


@pytest.mark.parametrize("text", ["last:0", "last:x", "3y", "yesterday", "2024-05-02..2024-05-01"])
def test_window_parse_rejects_bad_text(text):
    with pytest.raises(errors.ConfigError):
        monitor.Window.parse(text)


@pytest.mark.parametrize(
    "kw",
    [
        {"drift_share_threshold": 0.0},
        {"num_method": "chisquare"},
        {"cat_method": "wasserstein"},
        {"min_rows": 1},
        {"sample_size": 50, "min_rows": 100},
        {"num_threshold": -1.0},
    ],
)
def test_monitor_config_rejects_impossible_values(kw):
    with pytest.raises(errors.ConfigError):
        monitor.MonitorConfig(**kw)


def test_quality_floor_rejects_unknown_metric():
    with pytest.raises(errors.ConfigError, match="quality metric must be one of"):
        monitor.QualityFloor("auc", 0.5)


# --- reference summary -----------------------------------------------------------------------


def test_summarise_keeps_quantiles_and_category_shares():
    rng = np.random.default_rng(0)
    n = 20_000
    frame = pd.DataFrame(
        {"x": rng.exponential(size=n), "c": rng.choice(list("abc"), n, p=[0.5, 0.3, 0.2])}
    )
    frame.loc[: n // 10 - 1, "x"] = np.nan
    summary = reference.summarise(frame, {"x": "num", "c": "cat"}, 1000)
    assert len(summary) == 1000
    assert summary["x"].isna().mean() == pytest.approx(0.1)
    for q in (0.1, 0.5, 0.9):
        assert summary["x"].quantile(q) == pytest.approx(frame["x"].quantile(q), rel=0.02)
    shares = summary["c"].value_counts(normalize=True)
    assert (shares - frame["c"].value_counts(normalize=True)).abs().max() <= 1 / 1000


def test_summarise_returns_short_frames_unchanged():
    frame = pd.DataFrame({"x": [3.0, 1.0, 2.0]})
    assert reference.summarise(frame, {"x": "num"}, 100).equals(frame)


def test_monitor_verdict_on_summary_matches_full_reference(data_schema):
    big_ref = as_log(make_frame(20_000, seed=50), seed=50).drop(
        columns=[logschema.REQUEST_ID, logschema.TIMESTAMP, logschema.MODEL_VERSION]
    )
    current = as_log(make_frame(2000, seed=51, shift=("charges", "region")))
    full = monitor.monitor(big_ref, current, data_schema, _config(reference_rows=20_000))
    summarised = monitor.monitor(big_ref, current, data_schema, _config(reference_rows=1000))
    assert summarised.reference_rows == 1000 and full.reference_rows == 20_000
    assert summarised.drifted_columns == full.drifted_columns == ("charges", "region")
    for name, col in full.columns.items():
        assert summarised.columns[name].score == pytest.approx(col.score, abs=0.01)


# --- reading logs ----------------------------------------------------------------------------


def test_read_window_returns_rows_in_time_range(tmp_path):
    store = local.LocalStore(str(tmp_path))
    logs = as_log(make_frame(3000), start="2024-05-01")  # ~2 days at one row a minute
    write_logs(store, logs, files=3)
    win = monitor.Window(dt.datetime(2024, 5, 2, 6), dt.datetime(2024, 5, 2, 7))
    got = monitor.read_window(store, "churn", win)
    assert len(got) == 60
    assert got[logschema.TIMESTAMP].min() == pd.Timestamp("2024-05-02 06:00", tz="UTC")


def test_read_window_returns_newest_rows_for_last_n(tmp_path):
    store = local.LocalStore(str(tmp_path))
    logs = as_log(make_frame(900))
    write_logs(store, logs, files=3)
    got = monitor.read_window(
        store, "churn", monitor.Window(last_rows=400), columns=["tenure", logschema.TIMESTAMP]
    )
    assert len(got) == 400
    assert got[logschema.TIMESTAMP].tolist() == logs[logschema.TIMESTAMP].tail(400).tolist()
    assert list(got.columns) == ["tenure", logschema.TIMESTAMP]


def test_read_window_is_empty_when_no_logs(tmp_path):
    got = monitor.read_window(
        local.LocalStore(str(tmp_path)), "churn", monitor.Window(), ["tenure"]
    )
    assert got.empty and list(got.columns) == ["tenure"]


def test_read_window_names_file_and_columns_it_lacks(tmp_path):
    store = local.LocalStore(str(tmp_path))
    write_logs(store, as_log(make_frame(100)).drop(columns=["calls"]), files=1)
    with pytest.raises(errors.SchemaViolation) as e:
        monitor.read_window(store, "churn", monitor.Window(), ["tenure", "calls", logschema.PROBA])
    assert e.value.column == "calls" and "2024-05-01/000000-x.parquet" in str(e.value)


def test_read_window_numbers_rows_within_each_request(tmp_path):
    store = local.LocalStore(str(tmp_path))
    logs = as_log(make_frame(6)).assign(**{logschema.REQUEST_ID: ["a", "a", "a", "b", "b", "c"]})
    write_logs(store, logs, files=1)
    got = monitor.read_window(store, "churn", monitor.Window())
    assert got[window.ROW].tolist() == [0, 1, 2, 0, 1, 0]


def test_join_labels_needs_row_number_for_batched_requests():
    current = pd.DataFrame(
        {logschema.REQUEST_ID: ["a", "a", "b"], window.ROW: [0, 1, 0], "x": [1, 2, 3]}
    )
    by_request = pd.DataFrame({logschema.REQUEST_ID: ["a"], "y": [1]})
    with pytest.raises(errors.SchemaViolation, match="kfops_row"):
        core.join_labels(current, by_request, "y")
    by_row = pd.DataFrame({logschema.REQUEST_ID: ["a", "b"], window.ROW: [1, 0], "y": [1, 0]})
    assert core.join_labels(current, by_row, "y")["x"].tolist() == [2, 3]


# --- store-level entry point -----------------------------------------------------------------


def _champion_pipe(store):
    from kfops import registry

    return registry.Registry(store).load("churn").pipeline


def test_monitor_model_retrains_on_drifted_logs_of_the_champion(model_store):
    pipe = _champion_pipe(model_store)
    write_logs(model_store, scored_log(pipe, make_frame(800, seed=20, shift=("tenure", "calls"))))
    result = monitor.monitor_model(model_store, "churn", _config())
    assert (result.model, result.version, result.rows) == ("churn", "1", 800)
    assert result.retrain and set(result.drifted_columns) == {"tenure", "calls"}
    assert result.prediction_drift[logschema.PROBA].drifted  # more calls: more predicted churn


def test_monitor_model_keeps_champion_on_undrifted_logs(model_store):
    write_logs(model_store, scored_log(_champion_pipe(model_store), make_frame(800, seed=21)))
    result = monitor.monitor_model(model_store, "churn", _config())
    assert result.status == "judged" and not result.retrain
    assert not any(d.drifted for d in result.prediction_drift.values())


def test_monitor_model_caches_reference_summary_and_reuses_it(model_store):
    write_logs(model_store, scored_log(_champion_pipe(model_store), make_frame(800, seed=22)))
    first = monitor.monitor_model(model_store, "churn", _config())
    [key] = list(model_store.list("monitoring/churn/1/"))
    cached = reference.load_cached(model_store, key)
    assert len(cached) == first.reference_rows == 1200
    assert set(cached.columns) >= {"tenure", logschema.PREDICTION, logschema.PROBA}
    reference.save_cached(model_store, key, cached.assign(tenure=cached["tenure"] + 25))
    second = monitor.monitor_model(model_store, "churn", _config())
    assert not first.retrain and second.drifted_columns == ("tenure",)  # read from the cache


def test_monitor_model_reports_no_data_when_nothing_logged(model_store):
    result = monitor.monitor_model(model_store, "churn", _config())
    assert (result.status, result.retrain, result.notes) == (
        "no_data",
        False,
        ("no data in window",),
    )


def test_monitor_model_needs_a_reference_sample(tmp_path):
    store = local.LocalStore(str(tmp_path / "store"))
    register_model(store, tmp_path, with_reference=False)
    with pytest.raises(errors.ModelError, match="has no reference.parquet"):
        monitor.monitor_model(store, "churn", _config())


def test_monitor_model_names_model_without_champion(tmp_path):
    with pytest.raises(errors.NotFound, match="'nope' has no champion"):
        monitor.monitor_model(local.LocalStore(str(tmp_path)), "nope", _config())


# --- CLI -------------------------------------------------------------------------------------


def test_cli_monitor_json_prints_decision_and_writes_report(model_store, capsys, tmp_path):
    from kfops import cli

    write_logs(
        model_store,
        scored_log(_champion_pipe(model_store), make_frame(700, seed=40, shift=("plan", "region"))),
    )
    out_dir = tmp_path / "out"
    argv = [
        "monitor",
        "--store",
        model_store.uri,
        "--name",
        "churn",
        "--min-rows",
        "100",
        "--json",
        "--out-dir",
        str(out_dir),
    ]
    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["retrain"] is True and summary["retraining"] is None
    assert set(summary["drifted_columns"]) == {"plan", "region"} and summary["drift_share"] == 0.4
    assert summary["columns"]["plan"]["score"] > summary["columns"]["plan"]["threshold"]
    page = (out_dir / "churn" / "report.html").read_text(encoding="utf-8")
    assert summary["report"] == str(out_dir / "churn" / "report.html") and page.startswith(
        "<!doctype html>"
    )
    assert (
        json.loads((out_dir / "churn" / "summary.json").read_text())["reasons"]
        == summary["reasons"]
    )


def test_cli_monitor_says_no_data_in_plain_text(model_store, capsys, tmp_path):
    from kfops import cli

    argv = ["monitor", "--store", model_store.uri, "--name", "churn", "--out-dir", str(tmp_path)]
    assert cli.main(argv) == 0
    assert "churn v1: not judged (no data in window)" in capsys.readouterr().out


def test_cli_monitor_exits_with_config_error_on_bad_window(model_store, capsys):
    from kfops import cli

    assert (
        cli.main(["monitor", "--store", model_store.uri, "--window", "soon"])
        == errors.ConfigError.exit_code
    )
    assert "cannot parse window 'soon'" in capsys.readouterr().err
