"""The monitor step records itself as a `kfops-monitoring` run, as `kfops monitor` does locally."""

import json
from pathlib import Path

from kfops.components.monitor import monitor

from kfops import registry, runs
from kfops.monitor import MonitorConfig, service
from kfops.runs import monitoring, records
from tests.fixtures.monitoring import make_frame, scored_log, write_logs


def _logs(store):
    pipe = registry.Registry(store).load("churn").pipeline
    write_logs(store, scored_log(pipe, make_frame(600, seed=30, shift=("tenure",))))


def _monitoring_runs(store):
    return runs.RunIndex(store).list(experiment=monitoring.PIPELINE)


def test_monitor_step_writes_a_monitoring_run_record_named_in_its_decision(kfp_local, model_store):
    _logs(model_store)
    task = monitor(store_uri=model_store.uri, model_name="churn", min_rows=100)
    decision = json.loads(Path(task.outputs["decision"].path).read_text())

    (info,) = _monitoring_runs(model_store)
    assert info.run_id == decision["run_id"]
    shown = runs.RunIndex(model_store).show(decision["run_id"])
    header = json.loads(model_store.get_bytes(records.header_key(decision["run_id"])))
    assert header["parameters"] == records.clean_parameters(
        {"model_name": "churn", **decision["config"]}
    )
    assert [s["step"] for s in shown["steps"]] == ["monitor"]
    assert shown["steps"][0]["status"] == "succeeded"
    assert shown["steps"][0]["metrics"]["drift_share"] == decision["drift_share"]
    end = json.loads(model_store.get_bytes(records.end_key(decision["run_id"])))
    assert end["status"] == "succeeded" and end["model"] == {"name": "churn", "version": "1"}

    # `kfops monitor --retrain` records the step's decision again: that is the same run.
    html = Path(task.outputs["report"].path).read_text(encoding="utf-8")
    assert monitoring.record(model_store, decision, html) == decision["run_id"]
    assert len(_monitoring_runs(model_store)) == 1


def test_local_monitoring_record_has_the_same_parameters_as_the_steps(model_store):
    _logs(model_store)
    cfg = MonitorConfig(min_rows=100)
    result = service.monitor_model(model_store, "churn", cfg)
    run_id = monitoring.record(model_store, result.to_dict(), result.html)  # `kfops monitor`
    header = json.loads(model_store.get_bytes(records.header_key(run_id)))
    assert header["parameters"]["model_name"] == "churn"
    assert header["parameters"]["min_rows"] == 100
    assert set(header["parameters"]) == {"model_name", *result.config}
