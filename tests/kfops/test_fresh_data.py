"""Retraining data built from the champion's snapshot plus labelled traffic; per-version judging."""

import dataclasses
import datetime as dt

import pandas as pd
import pytest

from kfops import errors, labels, logschema, registry, snapshots
from kfops.monitor import fresh, rules, service
from kfops.store import local
from tests.fixtures import monitoring as fx

NOW = dt.datetime(2024, 5, 10, tzinfo=dt.UTC)


def _champion(tmp_path, rows=600):
    """A store whose champion `churn` v1 was trained on a snapshot of `rows` rows."""
    st = local.LocalStore(tmp_path / "store")
    version = fx.register_model(st, tmp_path)
    train = fx.make_frame(rows, seed=100)
    train.insert(0, "customer_id", [f"C{i}" for i in range(rows)])
    train["churned"] = fx.label_of(train)
    snap = snapshots.put_frame(st, train, {"source": "test"})
    # register_model gives v1 no lineage; v2 is the same model with one pointing at the snapshot
    reg = registry.Registry(st)
    files = {}
    for f in ("model.joblib", "schema.json", "reference.parquet"):
        reg.fetch("churn", version, tmp_path / "v1", [f])
        files[f] = tmp_path / "v1" / f
    schema_path = tmp_path / "v1" / "schema.json"
    sch = fx.monitoring_schema()
    sch = type(sch)((fx.schema.ColumnSpec("customer_id", "string", role="id"), *sch.columns),
                    sch.label, sch.task, sch.label_classes)  # fmt: skip
    sch.save(schema_path)
    meta = {"lineage": {"data_sha256": snap.sha256}}
    v2 = reg.register("churn", files, meta).version
    reg.promote("churn", v2)
    return st, snap, v2


def _traffic(st, n, seed, start, version):
    log = fx.as_log(
        fx.make_frame(n, seed=seed, shift=("tenure", "charges")), seed=seed, start=start
    )
    log[logschema.MODEL_VERSION] = version
    fx.write_logs(st, log)
    log[labels.ROW] = 0
    return log


def _deliver(st, log, n, when=NOW - dt.timedelta(hours=1)):
    part = log.head(n)
    frame = pd.DataFrame({"request_id": part[logschema.REQUEST_ID], "label": fx.label_of(part)})
    labels.deliver(st, "churn", frame, now=when)


def test_snapshot_holds_old_rows_and_labelled_traffic_and_names_both_parents(tmp_path):
    st, old, version = _champion(tmp_path)
    log = _traffic(st, 400, seed=5, start="2024-05-02", version=version)
    _deliver(st, log, 300)
    cfg = fresh.FreshDataConfig(min_labelled_rows=300, max_old_share=1.0)
    built = fresh.build(st, "churn", cfg, now=NOW)
    frame = snapshots.read(st, built.snapshot.sha256)
    assert len(frame) == 600 + 300 == built.facts["rows"]
    assert list(frame.columns) == list(snapshots.read(st, old.sha256).columns)
    new = frame.iloc[600:]
    assert new["customer_id"].tolist()[:2] == ["req-5-0/0", "req-5-1/0"]
    assert new["tenure"].tolist() == log["tenure"].head(300).tolist()
    assert new["churned"].tolist() == fx.label_of(log.head(300)).tolist()
    meta = snapshots.read_metadata(st, built.snapshot.sha256)
    assert meta["parents"] == [old.sha256]
    assert meta["fresh"]["labelled_rows"] == 300 and meta["fresh"]["logged_rows"] == 400
    assert (
        meta["fresh"]["champion_version"] == version and meta["fresh"]["as_of"] == NOW.isoformat()
    )
    assert str(frame["tenure"].dtype) == "int64" and str(frame["churned"].dtype) == "int64"


def test_too_few_labels_build_nothing(tmp_path):
    st, _, version = _champion(tmp_path)
    log = _traffic(st, 400, seed=5, start="2024-05-02", version=version)
    _deliver(st, log, 99)
    before = set(st.list("data/"))
    with pytest.raises(fresh.NotEnoughLabels, match="99 of 400 logged rows"):
        fresh.build(st, "churn", fresh.FreshDataConfig(min_labelled_rows=100), now=NOW)
    assert set(st.list("data/")) == before


def test_labels_after_as_of_and_traffic_outside_the_window_do_not_count(tmp_path):
    st, _, version = _champion(tmp_path)
    old_log = _traffic(st, 200, seed=6, start="2024-04-01", version=version)
    log = _traffic(st, 300, seed=5, start="2024-05-08", version=version)
    _deliver(st, old_log, 200)
    _deliver(st, log, 100)
    _deliver(st, log.iloc[100:], 200, when=NOW + dt.timedelta(minutes=1))  # after the build
    cfg = fresh.FreshDataConfig(fresh_window="7d", min_labelled_rows=50, max_old_share=1.0)
    built = fresh.build(st, "churn", cfg, now=NOW)
    assert built.facts["labelled_rows"] == 100
    assert built.facts["labels_outside_window"] == 200  # old traffic's labels
    assert built.facts["rows"] == 600 + 100


def test_old_rows_are_capped_to_their_share(tmp_path):
    st, _, version = _champion(tmp_path, rows=1000)
    log = _traffic(st, 300, seed=5, start="2024-05-02", version=version)
    _deliver(st, log, 250)
    cfg = fresh.FreshDataConfig(min_labelled_rows=100, max_old_share=0.25)
    built = fresh.build(st, "churn", cfg, now=NOW)
    assert built.facts["labelled_rows"] == 250
    assert built.facts["old_rows_kept"] == 83 == built.facts["rows"] - 250  # 0.25 / 0.75 * 250
    everything = fresh.FreshDataConfig(min_labelled_rows=100, max_old_share=1.0)
    assert fresh.build(st, "churn", everything, now=NOW).facts["old_rows_kept"] == 1000


def test_traffic_already_in_the_champions_snapshot_is_not_counted_twice(tmp_path):
    """v3 built from v2's snapshot (which holds the labelled traffic) plus the same window."""
    st, _, version = _champion(tmp_path)
    log = _traffic(st, 300, seed=5, start="2024-05-02", version=version)
    _deliver(st, log, 300)
    cfg = fresh.FreshDataConfig(min_labelled_rows=100, max_old_share=1.0)
    first = fresh.build(st, "churn", cfg, now=NOW)
    reg = registry.Registry(st)
    files = {}
    for f in ("model.joblib", "schema.json", "reference.parquet"):
        reg.fetch("churn", version, tmp_path / "v2", [f])
        files[f] = tmp_path / "v2" / f
    v3 = reg.register("churn", files, {"lineage": {"data_sha256": first.snapshot.sha256}}).version
    reg.promote("churn", v3)
    again = fresh.build(st, "churn", cfg, now=NOW)
    assert again.facts["duplicates"] == again.facts["duplicates_dropped"] == 300
    assert again.facts["rows"] == first.facts["rows"] == 900
    kept = fresh.build(st, "churn", dataclasses.replace(cfg, dedup=False), now=NOW)
    assert kept.facts["rows"] == 1200 and kept.facts["duplicates_dropped"] == 0


def test_a_champion_without_snapshot_is_refused(tmp_path):
    st = local.LocalStore(tmp_path / "store")
    fx.register_model(st, tmp_path)
    with pytest.raises(errors.ConfigError, match="no dataset snapshot.*retrain_on=source"):
        fresh.build(st, "churn", fresh.FreshDataConfig(), now=NOW)


@pytest.mark.parametrize(
    ("field", "value"),
    [("retrain_on", "x"), ("fresh_window", "yesterday"), ("min_labelled_rows", 0),
     ("max_old_share", 1.5)],
)  # fmt: skip
def test_bad_policy_is_a_config_error(field, value):
    with pytest.raises(errors.ConfigError):
        fresh.FreshDataConfig(**{field: value})


def test_each_version_is_judged_on_its_own_traffic(tmp_path):
    st, _, v2 = _champion(tmp_path)
    pipe = fx.fit_pipeline(_labelled(fx.make_frame(1200, seed=100)))
    calm = fx.scored_log(pipe, fx.make_frame(600, seed=1), seed=1, start="2024-05-01")
    calm[logschema.MODEL_VERSION] = v2
    drifted = fx.scored_log(pipe, fx.make_frame(600, seed=2, shift=("tenure", "charges", "plan")),
                            seed=2, start="2024-05-03")  # fmt: skip
    drifted[logschema.MODEL_VERSION] = "1"
    fx.write_logs(st, pd.concat([calm, drifted], ignore_index=True))
    cfg = rules.MonitorConfig(min_rows=200)
    on_v2 = service.monitor_model(st, "churn", cfg)
    on_v1 = service.monitor_model(st, "churn", cfg, version="1")
    assert (on_v2.version, on_v2.rows, on_v2.retrain) == (v2, 600, False)
    assert (on_v1.version, on_v1.rows, on_v1.retrain) == ("1", 600, True)


def _labelled(frame):
    frame["churned"] = fx.label_of(frame)
    return frame


def test_the_monitor_reads_labels_delivered_to_the_store(tmp_path):
    st, _, v2 = _champion(tmp_path)
    pipe = fx.fit_pipeline(_labelled(fx.make_frame(1200, seed=100)))
    frame = fx.make_frame(600, seed=1)
    log = fx.scored_log(pipe, frame, seed=1)
    log[logschema.MODEL_VERSION] = v2
    fx.write_logs(st, log)
    cfg = rules.MonitorConfig(min_rows=200)
    assert service.monitor_model(st, "churn", cfg).labelled_rows == 0
    _deliver(st, log, 400)
    judged = service.monitor_model(st, "churn", cfg)
    assert judged.labelled_rows == 400 and "roc_auc" in judged.quality


def test_a_time_column_takes_the_request_time_and_other_unlogged_columns_stay_empty():
    old = pd.DataFrame(
        {
            "when": pd.to_datetime(["2024-01-01", "2024-02-01"]),
            "note": ["a", "b"],
            "tenure": [1, 2],
            "churned": [0, 1],
        }
    )
    sch = fx.schema.Schema(
        (
            fx.schema.ColumnSpec("when", "datetime", role="time"),
            fx.schema.ColumnSpec("note", "string", role="ignore"),
            fx.schema.ColumnSpec("tenure", "int"),
            fx.schema.ColumnSpec("churned", "int", role="label"),
        ),
        "churned",
        "classification",
    )
    stamp = pd.Timestamp("2026-12-01 10:00", tz="UTC")
    joined = pd.DataFrame(
        {
            labels.REQUEST_ID: ["r"],
            labels.ROW: [0],
            logschema.TIMESTAMP: [stamp],
            "tenure": [5],
            labels.LABEL: [1],
        }
    )
    rows = fresh._as_training_rows(joined, old, sch)
    assert rows["when"].tolist() == [pd.Timestamp("2026-12-01 10:00")]
    assert rows["when"].dtype == old["when"].dtype
    assert rows["note"].isna().all() and rows[["tenure", "churned"]].values.tolist() == [[5, 1]]
