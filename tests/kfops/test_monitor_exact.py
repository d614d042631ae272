"""Exact monitor results and messages, written from the mutants `make mutation` found alive.

Each test pins what the first suite only approximated: every reason's text, every error's
column, rule and detail, the boundaries (window == min_rows, window == sample_size), the result
fields of a judged window, and the labels join.
"""

import numpy as np
import pandas as pd
import pytest

from kfops import errors, logschema, monitor, schema
from kfops.monitor import core, window
from kfops.monitor.evidently_run import ColumnDrift
from tests.fixtures.monitoring import as_log, make_frame


def _config(**kw):
    return monitor.MonitorConfig(**{"min_rows": 100, "drift_share_threshold": 0.3, **kw})


def _result(columns, prediction=None, quality=None, share=None):
    drifted = tuple(c for c, d in columns.items() if d.drifted)
    return core.MonitorResult(
        status=core.JUDGED, retrain=False, reasons=(), notes=(), rows=10, judged_rows=10,
        reference_rows=10, sample_error_bound=0.0, drift_share=share, drifted_columns=drifted,
        columns=columns, prediction_drift=prediction or {}, quality=quality or {},
        labelled_rows=0, config={},
    )  # fmt: skip


def test_decide_states_every_reason_exactly_and_in_order():
    cols = {
        "a": ColumnDrift("wasserstein", 0.1, 0.23456, True),
        "b": ColumnDrift("jensenshannon", 0.1, 0.01, False),
    }
    pred = {logschema.PROBA: ColumnDrift("wasserstein", 0.05, 0.5, True)}
    cfg = monitor.MonitorConfig(
        drift_share_threshold=0.5, key_columns=("b", "a", logschema.PROBA),
        quality_metric="accuracy", quality_floor=0.9,
    )  # fmt: skip
    reasons = core.decide(_result(cols, pred, {"accuracy": 0.81234}, share=0.5), cfg)
    assert reasons == (
        "drift share 0.50 >= threshold 0.50 (1 of 2 features drifted: a)",
        "key column 'a' drifted (wasserstein 0.2346, threshold 0.1)",
        "key column 'kfops_proba' drifted (wasserstein 0.5000, threshold 0.05)",
        "accuracy 0.8123 below floor 0.9",
    )


def test_decide_without_share_or_quality_gives_no_reason():
    cols = {"a": ColumnDrift("wasserstein", 0.1, 0.2, True)}
    cfg = monitor.MonitorConfig(quality_metric="accuracy", quality_floor=0.9)
    assert core.decide(_result(cols, share=None), cfg) == ()  # not judged: no share
    assert core.decide(_result({}, quality={"f1": 0.1}, share=0.0), cfg) == ()  # other metric


def test_decide_holds_the_floor_at_equality():
    cfg = monitor.MonitorConfig(quality_metric="accuracy", quality_floor=0.9)
    assert core.decide(_result({}, quality={"accuracy": 0.9}, share=0.0), cfg) == ()
    ceiling = monitor.MonitorConfig(quality_metric="mae", quality_floor=2.0)
    assert core.decide(_result({}, quality={"mae": 2.0}, share=0.0), ceiling) == ()
    assert core.decide(_result({}, quality={"mae": 2.5}, share=0.0), ceiling) == (
        "mae 2.5000 above ceiling 2",
    )


def test_judged_window_result_fields(reference, data_schema):
    current = as_log(make_frame(400, seed=11, shift=("tenure",)))
    result = monitor.monitor(reference, current, data_schema, _config(), model="m", version="3")
    assert (result.status, result.rows, result.judged_rows) == ("judged", 400, 400)
    assert result.reference_rows == len(reference) and result.sample_error_bound == 0.0
    assert (result.model, result.version) == ("m", "3")
    assert list(result.columns) == ["tenure", "charges", "calls", "plan", "region"]
    assert set(result.prediction_drift) == {logschema.PREDICTION, logschema.PROBA}
    assert result.drift_share == pytest.approx(0.2) and result.drifted_columns == ("tenure",)
    assert result.quality == {} and result.labelled_rows == 0 and result.notes == ()
    assert result.config == _config().to_dict()
    summary = result.to_dict()
    assert "html" not in summary and summary["status"] == "judged"
    assert "<html" in result.html.lower() and "tenure" in result.html
    assert "Evidently: data and prediction drift" in result.html
    assert "quality on labelled traffic" not in result.html  # no labels given


def test_window_of_exactly_min_rows_is_judged_and_one_less_is_not(reference, data_schema):
    current = as_log(make_frame(100, seed=12))
    assert monitor.monitor(reference, current, data_schema, _config()).status == "judged"
    small = monitor.monitor(reference, current.head(99), data_schema, _config())
    assert (small.status, small.rows, small.drift_share) == ("too_small", 99, None)
    assert small.config == _config().to_dict() and "too small" in small.html


def test_window_of_exactly_sample_size_is_judged_whole(reference, data_schema):
    current = as_log(make_frame(300, seed=13))
    result = monitor.monitor(reference, current, data_schema, _config(sample_size=300))
    assert result.judged_rows == 300 and result.sample_error_bound == 0.0
    sampled = monitor.monitor(reference, current, data_schema, _config(sample_size=299))
    assert sampled.judged_rows == 299
    assert sampled.sample_error_bound == round(monitor.sample_error_bound(299, 0.01), 6)


def test_sample_depends_on_the_seed(reference, data_schema):
    current = as_log(make_frame(2000, seed=14))
    scores = {
        seed: monitor.monitor(reference, current, data_schema, _config(sample_size=200, seed=seed))
        .columns["charges"]
        .score
        for seed in (0, 0, 1)
    }
    assert len(scores) == 2 and scores[0] != scores[1]


def test_missing_and_unknown_columns_error_is_exact(reference, data_schema):
    current = as_log(make_frame(200)).drop(columns=["plan"]).assign(coupon="x")
    with pytest.raises(errors.SchemaViolation) as e:
        monitor.monitor(reference, current, data_schema, _config())
    assert e.value.rule == "inference log columns match the model schema"
    assert str(e.value).endswith(
        "missing features ['plan'], columns unknown to the model ['coupon']"
    )


def test_reference_sample_is_named_when_it_lacks_a_feature(reference, data_schema):
    current = as_log(make_frame(200))
    with pytest.raises(errors.SchemaViolation) as e:
        monitor.monitor(reference.drop(columns=["calls"]), current, data_schema, _config())
    assert e.value.column == "calls"
    assert e.value.rule == "reference sample columns match the model schema"


def test_text_in_a_numeric_feature_is_named_with_its_dtype(reference, data_schema):
    current = as_log(make_frame(200)).assign(charges="cheap")
    with pytest.raises(errors.SchemaViolation) as e:
        monitor.monitor(reference, current, data_schema, _config())
    assert (e.value.column, e.value.rule) == ("charges", "dtype")
    assert str(e.value).endswith("the model expects numbers, the inference log holds object")


def test_all_null_or_datetime_numeric_feature_is_accepted(data_schema):
    frame = as_log(make_frame(200))
    core.check_columns(frame.assign(charges=None), data_schema, {"charges": "num"})
    dates = frame.assign(charges=pd.Timestamp("2024-01-01"))
    core.check_columns(dates, data_schema, {"charges": "num"})
    with_row = frame.assign(**{window.ROW: 0})
    core.check_columns(with_row, data_schema, {"charges": "num"})


def test_key_column_error_lists_what_can_be_keyed(reference, data_schema):
    current = as_log(make_frame(200))
    with pytest.raises(errors.ConfigError) as e:
        monitor.monitor(reference, current, data_schema, _config(key_columns=("nope",)))
    assert str(e.value) == (
        "key columns ['nope'] are neither model features "
        "['tenure', 'charges', 'calls', 'plan', 'region'] nor prediction columns logged on both "
        "sides ['kfops_prediction', 'kfops_proba']"
    )


def test_prediction_columns_count_only_when_filled_on_both_sides(reference, data_schema):
    current = as_log(make_frame(300, seed=15))
    no_proba = current.assign(**{logschema.PROBA: np.nan})
    result = monitor.monitor(reference, no_proba, data_schema, _config())
    assert set(result.prediction_drift) == {logschema.PREDICTION}
    ref_no_pred = reference.drop(columns=[logschema.PREDICTION])
    result = monitor.monitor(ref_no_pred, current, data_schema, _config())
    assert set(result.prediction_drift) == {logschema.PROBA}
    with pytest.raises(errors.ConfigError):  # not logged on both sides: cannot be a key column
        monitor.monitor(
            ref_no_pred, current, data_schema, _config(key_columns=("kfops_prediction",))
        )


def test_quality_is_measured_on_the_labelled_rows_only(reference, data_schema):
    current = as_log(make_frame(300, seed=16))
    truth = current[logschema.PREDICTION].to_numpy().copy()
    truth[:30] = 1 - truth[:30]  # 10 % wrong
    labels = pd.DataFrame({logschema.REQUEST_ID: current[logschema.REQUEST_ID], "churned": truth})
    labels.loc[250:, "churned"] = np.nan  # unlabelled rows are dropped, not counted as wrong
    result = monitor.monitor(reference, current, data_schema, _config(), labels)
    assert result.labelled_rows == 250
    assert result.quality["accuracy"] == pytest.approx(220 / 250)
    assert result.notes == ()
    assert "Evidently: quality on labelled traffic" in result.html


def test_join_labels_keeps_the_last_label_of_a_request_and_names_missing_columns():
    current = pd.DataFrame({logschema.REQUEST_ID: ["a", "b", "c"], "x": [1, 2, 3]})
    labels = pd.DataFrame({logschema.REQUEST_ID: ["a", "a", "b"], "y": [0, 1, None]})
    joined = core.join_labels(current, labels, "y")
    assert joined[["x", "y"]].values.tolist() == [[1, 1]]
    with pytest.raises(errors.SchemaViolation) as e:
        core.join_labels(current, labels.drop(columns=["y"]), "y")
    assert e.value.column == "y" and e.value.rule == "labels join"
    assert str(e.value).endswith("labels need ['kfops_request_id', 'y']; the window needs "
                                 "['kfops_request_id']")  # fmt: skip
    with pytest.raises(errors.SchemaViolation) as e:
        core.join_labels(current, labels, None)
    assert e.value.column == "None"
    by_row = labels.assign(**{window.ROW: 0})
    with pytest.raises(errors.SchemaViolation) as e:
        core.join_labels(current, by_row, "y")
    assert e.value.column == f"window:{window.ROW}"


def test_regression_task_defaults_to_classification_only_when_unset(reference):
    cols = tuple(schema.ColumnSpec(n, t) for n, t in [("tenure", "int"), ("charges", "float")])
    plain = schema.Schema(cols + (schema.ColumnSpec("churned", "int", role="label"),), "churned")
    current = as_log(make_frame(200, seed=17))[["tenure", "charges", logschema.REQUEST_ID,
                                                logschema.PREDICTION]]  # fmt: skip
    labels = pd.DataFrame({logschema.REQUEST_ID: current[logschema.REQUEST_ID],
                           "churned": current[logschema.PREDICTION]})  # fmt: skip
    ref = reference[["tenure", "charges", logschema.PREDICTION]]
    result = monitor.monitor(ref, current, plain, _config(), labels)
    assert result.quality["accuracy"] == 1.0 and "mae" not in result.quality


def test_join_labels_names_every_missing_column_and_the_batched_request_rule():
    current = pd.DataFrame({logschema.REQUEST_ID: ["a", "a"], "x": [1, 2]})
    with pytest.raises(errors.SchemaViolation) as e:
        core.join_labels(current, pd.DataFrame({"other": [1]}), "y")
    assert e.value.column == "kfops_request_id, y"
    with pytest.raises(errors.SchemaViolation) as e:
        core.join_labels(current, pd.DataFrame({logschema.REQUEST_ID: ["a"], "y": [1]}), "y")
    assert (e.value.column, e.value.rule) == (window.ROW, "labels join")
    assert str(e.value).endswith(
        "requests in the window hold several rows; labels must give kfops_row as well"
    )


def test_an_unjudged_window_has_no_evidently_section(reference, data_schema):
    for current in (pd.DataFrame(), as_log(make_frame(30))):
        html = monitor.monitor(reference, current, data_schema, _config()).html
        assert "Not judged" in html and "Evidently" not in html


def test_a_too_small_window_gives_the_whole_empty_result(reference, data_schema):
    result = monitor.monitor(
        reference, as_log(make_frame(30)), data_schema, _config(), model="m", version="3"
    )
    assert result.to_dict() == {
        "status": "too_small", "retrain": False, "reasons": (),
        "notes": ("sample too small to judge: 30 rows < min_rows 100",), "rows": 30,
        "judged_rows": 0, "reference_rows": 0, "sample_error_bound": 0.0, "drift_share": None,
        "drifted_columns": (), "columns": {}, "prediction_drift": {}, "quality": {},
        "labelled_rows": 0, "config": _config().to_dict(), "model": "m", "version": "3",
    }  # fmt: skip


def test_the_reference_is_summarised_to_reference_rows(reference, data_schema):
    current = as_log(make_frame(200, seed=18))
    result = monitor.monitor(reference, current, data_schema, _config(reference_rows=300))
    assert result.reference_rows == 300
    assert set(result.prediction_drift) == {logschema.PREDICTION, logschema.PROBA}


def test_quality_needs_min_rows_labelled_rows_exactly(reference, data_schema):
    current = as_log(make_frame(150, seed=19))
    labels = pd.DataFrame(
        {
            logschema.REQUEST_ID: current[logschema.REQUEST_ID],
            "churned": current["kfops_prediction"],
        }
    )
    judged = monitor.monitor(reference, current, data_schema, _config(), labels.head(100))
    assert (judged.labelled_rows, judged.quality["accuracy"], judged.notes) == (100, 1.0, ())
    short = monitor.monitor(reference, current, data_schema, _config(), labels.head(99))
    assert (short.labelled_rows, short.quality) == (99, {})
    assert short.notes == ("quality not judged: 99 labelled rows < min_rows 100",)
    assert "quality on labelled traffic" in judged.html
    assert "quality on labelled traffic" not in short.html


def test_join_labels_keeps_rows_with_null_features_and_replaces_a_logged_label():
    current = pd.DataFrame(
        {logschema.REQUEST_ID: ["a", "b", "c"], "x": [1.0, np.nan, 3.0], "y": [np.nan] * 3}
    )
    labels = pd.DataFrame({logschema.REQUEST_ID: ["c", "b"], "y": [1, 0]})
    joined = core.join_labels(current, labels, "y")
    assert joined[logschema.REQUEST_ID].tolist() == ["b", "c"]
    assert joined["y"].tolist() == [0, 1] and list(joined.columns) == [
        logschema.REQUEST_ID, "x", "y"
    ]  # fmt: skip


def test_decide_lists_every_drifted_feature():
    cols = {n: ColumnDrift("wasserstein", 0.1, 0.5, True) for n in ("a", "b")}
    reasons = core.decide(_result(cols, share=1.0), _config())
    assert reasons == ("drift share 1.00 >= threshold 0.30 (2 of 2 features drifted: a, b)",)


@pytest.mark.parametrize("only", [0, 1])
def test_quality_of_labels_holding_one_class_is_not_judged_not_a_traceback(
    reference, data_schema, only
):
    # An all-negative (or all-positive) window of delayed labels: precision, recall, F1 and
    # ROC AUC are undefined; Evidently would raise "Cannot find pos_label".
    current = as_log(make_frame(150, seed=21))
    labels = pd.DataFrame({logschema.REQUEST_ID: current[logschema.REQUEST_ID], "churned": only})
    result = monitor.monitor(
        reference, current, data_schema, _config(quality_metric="f1", quality_floor=0.5), labels
    )
    assert (result.status, result.labelled_rows, result.quality) == (core.JUDGED, 150, {})
    assert result.notes == (
        f"quality not judged: the 150 labelled rows hold one class only ('{only}'); "
        "quality metrics need at least two",
    )
    assert not any(r.startswith("f1") for r in result.reasons)
    assert "quality on labelled traffic" not in result.html  # no empty quality section
