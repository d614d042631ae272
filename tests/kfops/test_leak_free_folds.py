"""Search folds follow the split (issue 13): grouped for a group split, in time for a time split.

Each case inspects the folds the search used (recorded in the result) and checks their effect:
data where a shuffled fold leaks (a group's label memorised from its id-like feature, or the
future learned from neighbouring timestamps) scores high under leaky folds and near chance
under the right ones.
"""

import numpy as np
import pandas as pd
import pytest

from kfops import errors, schema, split, train


def _schema(df, roles):
    cols = tuple(
        schema.ColumnSpec(c, schema.dtype_of(df[c]), role=roles.get(c, "feature"))
        for c in df.columns
    )
    return schema.Schema(cols, label="y", task="classification")


def _grouped(n_groups=60, per_group=8, seed=0):
    """Each group has one label and one value of `code`: a model can only memorise groups."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), per_group)
    code = rng.permutation(n_groups)[groups].astype(float)
    return pd.DataFrame(
        {
            "customer": [f"c{g}" for g in groups],
            "code": code,
            "noise": rng.normal(size=groups.size),
            "y": rng.permutation(np.arange(n_groups) % 2)[groups],
        }
    )


def _timed(n=480, block=24, seed=0):
    """The label flips every `block` rows in time: learnable from neighbours, not forward."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    order = rng.permutation(n)  # stored shuffled: the folds must sort by time themselves
    return pd.DataFrame(
        {
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(t[order], unit="h"),
            "tick": t[order].astype(float),
            "noise": rng.normal(size=n),
            "y": ((t[order] // block) % 2).astype(int),
        }
    )


def _cfg(**kw):
    return train.TrainConfig(label="y", search_iterations=1, cv_folds=3, **kw)


def test_group_split_searches_on_grouped_folds():
    df = _grouped()
    sch = _schema(df, {"customer": "group", "y": "label"})
    grouped = train.train(df, sch, _cfg(group_column="customer"))
    assert grouped.folds["kind"] == "GroupKFold" and grouped.folds["column"] == "customer"
    assert len(grouped.folds["folds"]) == 3
    assert all(f["shared_groups"] == 0 for f in grouped.folds["folds"])
    assert sum(f["validation_rows"] for f in grouped.folds["folds"]) == len(df)
    # The folds were the ones scored: memorising a group does not help on unseen groups.
    assert grouped.cv_score < 0.7
    leaky = train.train(df, sch, _cfg())
    assert leaky.folds["kind"] == "StratifiedKFold" and leaky.cv_score > 0.9


def test_search_folds_keep_each_group_on_one_side():
    df = _grouped(n_groups=30, per_group=5)
    folds, described = train.search_folds(df, df["y"].to_numpy(), _cfg(group_column="customer"))
    groups = df["customer"].to_numpy()
    for train_pos, val_pos in folds:
        assert not set(groups[train_pos]) & set(groups[val_pos])
    assert [f["shared_groups"] for f in described["folds"]] == [0, 0, 0]


def test_time_split_searches_on_time_ordered_folds():
    df = _timed()
    sch = _schema(df, {"ts": "time", "y": "label"})
    timed = train.train(df, sch, _cfg(time_column="ts"))
    assert timed.folds["kind"] == "TimeSeriesSplit" and timed.folds["column"] == "ts"
    for fold in timed.folds["folds"]:
        assert pd.Timestamp(fold["train_time_max"]) < pd.Timestamp(fold["validation_time_min"])
    assert timed.cv_score < 0.7
    leaky = train.train(df, sch, _cfg())
    assert leaky.cv_score > 0.9


def test_time_folds_validate_only_on_later_rows_even_with_tied_times():
    df = _timed(n=120)
    df["ts"] = df["ts"].dt.floor("3h")  # three rows per timestamp: ties at every boundary
    folds, _ = train.search_folds(df, df["y"].to_numpy(), _cfg(time_column="ts"))
    times = df["ts"].to_numpy()
    for train_pos, val_pos in folds:
        assert times[train_pos].max() < times[val_pos].min()
    assert len(folds) == 3


def test_too_few_groups_for_the_folds_is_one_clear_error():
    df = _grouped(n_groups=2, per_group=10)
    with pytest.raises(errors.DataError, match="2 groups in 'customer' are too few for 3"):
        train.search_folds(df, df["y"].to_numpy(), _cfg(group_column="customer"))


def test_grouped_and_time_folds_at_once_are_refused():
    with pytest.raises(errors.ConfigError, match="not both"):
        _cfg(group_column="g", time_column="t")


def _with_repeats():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(size=200).round(6), "y": rng.integers(0, 2, 200)})
    return pd.concat([df, df.iloc[:40]], ignore_index=True)  # 40 rows appear twice


def _cross_pairs(result):
    merged = result.test.merge(result.train.drop_duplicates(), how="inner")
    return len(merged)


def test_split_drops_test_rows_equal_to_training_rows_and_counts_them():
    df = _with_repeats()
    kept = split.split(df, split.SplitConfig(label="y", cross_duplicates="keep", seed=3))
    found = kept.report["cross_duplicates"]["test_rows_equal_to_train_rows"]
    assert found == _cross_pairs(kept) > 0
    dropped = split.split(df, split.SplitConfig(label="y", seed=3))
    assert dropped.report["cross_duplicates"] == {
        "policy": "drop",
        "test_rows_equal_to_train_rows": found,
        "dropped_from_test": found,
        "examples": kept.report["cross_duplicates"]["examples"],
    }
    assert _cross_pairs(dropped) == 0
    assert len(dropped.train) == len(kept.train) and len(dropped.test) == len(kept.test) - found
    assert any("dropped from test" in n for n in dropped.report["notes"])


def test_split_blocks_cross_duplicates_when_asked():
    with pytest.raises(errors.DataError, match=r"test rows equal a training row exactly"):
        split.split(_with_repeats(), split.SplitConfig(label="y", cross_duplicates="block"))


def test_rows_that_differ_in_one_column_are_not_duplicates():
    df = _with_repeats()
    df.loc[200:, "x"] += 100.0  # the repeats now differ in x (and from every other row)
    result = split.split(df, split.SplitConfig(label="y", cross_duplicates="block", seed=3))
    assert result.report["cross_duplicates"]["test_rows_equal_to_train_rows"] == 0


def test_run_summary_notes_how_many_cross_split_duplicates_were_handled():
    from kfops.runs import outcome

    split_step = {
        "step": "split",
        "status": "succeeded",
        "parameters": {"cross_duplicates": "drop"},
        "metrics": {"cross_duplicates": 40},
        "outputs": [],
    }
    got = outcome.derive([split_step], "SUCCEEDED")
    assert "split: 40 test rows equal a training row (cross_duplicates=drop)" in got["notes"]
    split_step["metrics"] = {"cross_duplicates": 0}
    assert outcome.derive([split_step], "SUCCEEDED")["notes"] == []
