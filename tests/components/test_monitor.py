"""The monitor component run for real through kfp.local (SubprocessRunner, this environment)."""

import html.parser
import json
from pathlib import Path

from kfops.components.monitor import monitor

from kfops import registry
from tests.fixtures.monitoring import make_frame, scored_log, write_logs


def _logs(store, shift=()):
    pipe = registry.Registry(store).load("churn").pipeline
    write_logs(store, scored_log(pipe, make_frame(600, seed=30, shift=shift)))


def test_monitor_component_writes_report_metrics_and_decision(kfp_local, model_store):
    _logs(model_store, shift=("tenure", "charges"))
    task = monitor(store_uri=model_store.uri, model_name="churn", min_rows=100)
    assert task.outputs["Output"] is True
    decision = json.loads(Path(task.outputs["decision"].path).read_text())
    assert decision["retrain"] is True and set(decision["drifted_columns"]) == {"tenure", "charges"}
    assert task.outputs["decision"].metadata["reasons"] == decision["reasons"]
    metrics = task.outputs["metrics"].metadata
    assert metrics["retrain"] == 1.0 and metrics["drift_share"] == 0.4
    assert metrics["drift_score/tenure"] > 0.1
    page = Path(task.outputs["report"].path).read_text(encoding="utf-8")
    parser = html.parser.HTMLParser()
    parser.feed(page)  # parses as HTML without error
    assert page.startswith("<!doctype html>") and "Retrain" in page and "<iframe" in page
