"""Every metric on small hand-checkable arrays and at its undefined edges, against scikit-learn.

Written from the mutants `make mutation` found alive: fast (no model is trained), so each
mutant of kfops/evaluate/measures.py is judged in a second.
"""

import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as sk

from kfops.evaluate import measures

Y = np.array([1, 0, 1, 1, 0, 0, 1, 0])
PRED = np.array([1, 0, 0, 1, 1, 0, 1, 0])
P1 = np.array([0.9, 0.2, 0.4, 0.8, 0.6, 0.1, 0.7, 0.3])


def _binary(y=Y, pred=PRED, p1=P1, positive=1):
    proba = None if p1 is None else np.column_stack([1 - p1, p1])
    return measures.Scored(np.asarray(y), np.asarray(pred), proba, [0, 1], positive)


def test_binary_metrics_equal_scikit_learn():
    got = measures.measure(_binary(), "classification")
    assert got == pytest.approx(
        {
            "accuracy": sk.accuracy_score(Y, PRED),
            "precision": sk.precision_score(Y, PRED),
            "recall": sk.recall_score(Y, PRED),
            "f1": sk.f1_score(Y, PRED),
            "roc_auc": sk.roc_auc_score(Y, P1),
            "pr_auc": sk.average_precision_score(Y, P1),
            "log_loss": sk.log_loss(Y, np.column_stack([1 - P1, P1])),
            "brier": sk.brier_score_loss(Y, P1),
        },
        rel=1e-12,
    )
    assert list(got) == [
        "accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "brier",
    ]  # fmt: skip


def test_binary_metrics_are_about_the_named_positive_class():
    got = measures.classification(_binary(positive=0))
    assert got["precision"] == sk.precision_score(Y, PRED, pos_label=0)
    assert got["recall"] == sk.recall_score(Y, PRED, pos_label=0)
    assert got["roc_auc"] == pytest.approx(sk.roc_auc_score(Y == 0, 1 - P1))
    assert got["brier"] == pytest.approx(np.mean((1 - P1 - (Y == 0)) ** 2))


def test_counts_are_zero_where_undefined_and_f1_needs_only_one_side():
    none_predicted = measures.classification(_binary(y=[1, 0], pred=[0, 0], p1=None))
    assert (none_predicted["precision"], none_predicted["recall"], none_predicted["f1"]) == (
        0.0, 0.0, 0.0,
    )  # fmt: skip
    no_positive = measures.classification(_binary(y=[0, 0], pred=[1, 0], p1=None))
    assert (no_positive["precision"], no_positive["recall"], no_positive["f1"]) == (0.0, 0.0, 0.0)
    neither = measures.classification(_binary(y=[0, 0], pred=[0, 0], p1=None))
    assert (neither["precision"], neither["recall"], neither["f1"]) == (0.0, 0.0, 0.0)
    half = measures.classification(_binary(y=[1, 1], pred=[1, 0], p1=None))
    assert (half["precision"], half["recall"], half["f1"]) == (1.0, 0.5, 2 / 3)


def test_without_probabilities_the_probability_metrics_are_none():
    assert measures.classification(_binary(p1=None)) == {
        "accuracy": 0.75,
        "precision": 0.75,
        "recall": 0.75,
        "f1": 0.75,
        "roc_auc": None,
        "pr_auc": None,
        "log_loss": None,
        "brier": None,
    }


def test_one_class_present_leaves_roc_auc_undefined_but_not_the_others():
    got = measures.classification(
        _binary(y=[1, 1, 1], pred=[1, 1, 0], p1=np.array([0.75, 0.5, 0.25]))
    )
    assert got["roc_auc"] is None
    assert got["pr_auc"] == 1.0
    assert got["brier"] == pytest.approx((0.0625 + 0.25 + 0.5625) / 3)
    no_positive = measures.classification(_binary(y=[0, 0], pred=[0, 0], p1=np.array([0.5, 0.25])))
    assert (no_positive["roc_auc"], no_positive["pr_auc"]) == (None, None)
    assert no_positive["brier"] == pytest.approx((0.25 + 0.0625) / 2)


def test_empty_rows_give_none_not_nan():
    got = measures.classification(
        _binary(y=np.array([], int), pred=np.array([], int), p1=np.array([]))
    )
    assert {k: got[k] for k in ("roc_auc", "pr_auc", "log_loss", "brier")} == dict.fromkeys(
        ("roc_auc", "pr_auc", "log_loss", "brier")
    )
    assert measures.regression(np.array([]), np.array([]))["mae"] is None


def test_a_label_the_model_never_saw_has_no_log_loss():
    scored = measures.Scored(
        np.array([0, 2]), np.array([0, 1]), np.array([[0.75, 0.25], [0.5, 0.5]]), [0, 1], 1
    )
    assert measures.classification(scored)["log_loss"] is None


MULTI_Y = np.array(["a", "b", "c", "a", "b", "c", "a", "c"])
MULTI_PRED = np.array(["a", "b", "b", "a", "c", "c", "b", "c"])
MULTI_P = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.2, 0.6, 0.2],
        [0.1, 0.5, 0.4],
        [0.8, 0.1, 0.1],
        [0.3, 0.3, 0.4],
        [0.1, 0.2, 0.7],
        [0.4, 0.5, 0.1],
        [0.2, 0.2, 0.6],
    ]
)


def test_multiclass_metrics_are_scikit_learn_macro_averages_without_brier():
    scored = measures.Scored(MULTI_Y, MULTI_PRED, MULTI_P, ["a", "b", "c"])
    got = measures.measure(scored, "classification")
    onehot = np.column_stack([MULTI_Y == c for c in "abc"])
    assert got == pytest.approx(
        {
            "accuracy": 5 / 8,
            "precision": sk.precision_score(MULTI_Y, MULTI_PRED, average="macro"),
            "recall": sk.recall_score(MULTI_Y, MULTI_PRED, average="macro"),
            "f1": sk.f1_score(MULTI_Y, MULTI_PRED, average="macro"),
            "roc_auc": sk.roc_auc_score(MULTI_Y, MULTI_P, multi_class="ovr", average="macro"),
            "pr_auc": np.mean(
                [sk.average_precision_score(onehot[:, i], MULTI_P[:, i]) for i in range(3)]
            ),
            "log_loss": sk.log_loss(MULTI_Y, MULTI_P, labels=["a", "b", "c"]),
        },
        rel=1e-12,
    )
    assert "brier" not in got


def test_multiclass_with_a_class_absent_keeps_pr_auc_over_the_present_ones():
    mask = MULTI_Y != "b"
    scored = measures.Scored(MULTI_Y, MULTI_PRED, MULTI_P, ["a", "b", "c"]).subset(mask)
    assert len(scored.y_true) == len(scored.y_pred) == len(scored.proba) == 6
    got = measures.classification(scored)
    assert got["roc_auc"] is None
    y = MULTI_Y[mask]
    expected = np.mean(
        [sk.average_precision_score(y == c, MULTI_P[mask][:, i]) for i, c in ((0, "a"), (2, "c"))]
    )
    assert got["pr_auc"] == pytest.approx(expected, rel=1e-12)
    assert got["precision"] == pytest.approx(
        sk.precision_score(
            y, MULTI_PRED[mask], average="macro", labels=["a", "b", "c"], zero_division=0
        )
    )
    assert measures.classification(_without_proba(scored))["pr_auc"] is None


def _without_proba(scored):
    return measures.Scored(scored.y_true, scored.y_pred, None, scored.classes)


def test_regression_values_and_their_undefined_edges():
    got = measures.measure(
        measures.Scored(np.array([1, 2, 4]), np.array([2, 2, 2]), None, []), "regression"
    )
    assert got == pytest.approx(
        {"mae": 1.0, "rmse": math.sqrt(5 / 3), "r2": 1 - (5 / 3) / (14 / 9)}
    )
    assert measures.regression(np.array([3.0]), np.array([1.0])) == {
        "mae": 2.0,
        "rmse": 2.0,
        "r2": None,
    }
    assert measures.regression(np.array([3.0, 3.0]), np.array([1.0, 3.0]))["r2"] is None
    assert measures.regression(np.array([1.0, 2.0]), np.array([1.0, 2.0]))["r2"] == 1.0
    infinite = measures.regression(np.array([1.0, 2.0]), np.array([np.inf, 2.0]))
    assert infinite["rmse"] == math.inf and infinite["mae"] == math.inf
    assert math.isnan(measures.regression(np.array([]), np.array([]))["rmse"])


def test_clean_nulls_non_finite_values_and_notes_every_null():
    notes = ["earlier"]
    values = {"a": 1.0, "b": math.nan, "c": None, "d": math.inf, "e": None, "f": 3}
    assert measures.clean(values, "slice x: ", notes) == {
        "a": 1.0, "b": None, "c": None, "d": None, "e": None, "f": 3,
    }  # fmt: skip
    assert notes == [
        "earlier",
        "slice x: b was nan (not finite): reported as null",
        "slice x: d was inf (not finite): reported as null",
        "slice x: c, e undefined on these rows: reported as null",
    ]
    quiet = []
    assert measures.clean({"a": 0.5}, "", quiet) == {"a": 0.5} and quiet == []


def test_subset_without_probabilities_keeps_none():
    scored = _binary(p1=None).subset(Y == 1)
    assert scored.proba is None and list(scored.y_true) == [1, 1, 1, 1]


def test_regression_reads_a_boolean_label_as_numbers():
    got = measures.regression(np.array([True, False, True, True]), np.array([1.0, 0.0, 0.5, 1.0]))
    assert got == pytest.approx({"mae": 0.125, "rmse": 0.25, "r2": 1 - 0.0625 / 0.1875})


def test_regression_edges_raise_no_numpy_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(measures.regression(np.array([]), np.array([]))["rmse"])
        both_infinite = measures.regression(np.array([np.inf, 1.0]), np.array([np.inf, 2.0]))
        assert math.isnan(both_infinite["mae"])


def test_macro_averages_count_a_class_nobody_predicted_or_had():
    y = np.array(["a", "c", "a", "c"])
    pred = np.array(["a", "c", "c", "c"])
    got = measures.classification(measures.Scored(y, pred, None, ["a", "b", "c"]))
    assert got["precision"] == pytest.approx((1 + 0 + 2 / 3) / 3)
    assert got["recall"] == pytest.approx((0.5 + 0 + 1) / 3)


def test_multiclass_label_the_model_never_saw_leaves_roc_auc_and_log_loss_undefined():
    """It used to raise scikit-learn's ValueError out of the evaluate step."""
    y = np.append(MULTI_Y, "d")
    proba = np.vstack([MULTI_P, [1 / 3, 1 / 3, 1 / 3]])
    got = measures.classification(
        measures.Scored(y, np.append(MULTI_PRED, "a"), proba, ["a", "b", "c"])
    )
    assert (got["roc_auc"], got["log_loss"]) == (None, None)
    assert got["accuracy"] == 5 / 9


def test_one_positive_row_is_enough_for_roc_auc():
    got = measures.classification(
        _binary(y=[1, 0, 0], pred=[1, 0, 0], p1=np.array([0.75, 0.5, 0.25]))
    )
    assert got["roc_auc"] == 1.0


def test_multiclass_rows_all_of_unseen_labels_have_no_pr_auc():
    scored = measures.Scored(
        np.array(["d", "d"]), np.array(["a", "b"]), MULTI_P[:2], ["a", "b", "c"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert measures.classification(scored)["pr_auc"] is None
