"""The run's outcome is derived from its step records by one function (kfops.runs.outcome)."""

from kfops import errors
from kfops.runs import outcome


def _step(name, status="succeeded", ended="2026-01-01T00:00:00", **outputs):
    out = [{"name": k, **v} for k, v in outputs.items()]
    return {"step": name, "status": status, "ended_at": ended, "outputs": out}


def _failed(name, error_class="DataError", exit_code=3, ended="2026-01-01T00:00:05"):
    record = _step(name, "failed", ended)
    record.update(error=f"{error_class}: bad", error_class=error_class, exit_code=exit_code)
    return record


GATE = {"blessing": {"blessed": True, "reasons": [], "notes": ["no champion yet"]}}
PUSH = {"registered": {"model_name": "churn", "version": "3", "uri": "s3://b/models/churn/3"}}


def test_a_blessed_pushed_run_succeeds_with_its_model():
    got = outcome.derive([_step("gate", **GATE), _step("push", **PUSH)], "SUCCEEDED")
    assert got["status"] == "succeeded" and got["exit_code"] == 0
    assert got["blessed"] is True and got["notes"] == ["no champion yet"]
    assert got["model"] == {"name": "churn", "version": "3"}


def test_a_rejected_run_succeeds_with_the_gate_reasons():
    gate = {"blessing": {"blessed": False, "reasons": ["threshold roc_auc: low"]}}
    got = outcome.derive([_step("gate", **gate)], "SUCCEEDED")
    assert got["status"] == "succeeded" and got["blessed"] is False
    assert got["reasons"] == ["threshold roc_auc: low"] and "model" not in got


def test_infra_validation_failure_adds_its_reasons():
    infra = {"report": {"passed": False, "reasons": ["v2 infer: 500"]}}
    got = outcome.derive([_step("gate", **GATE), _step("infra-validate", **infra)])
    assert got["status"] == "succeeded" and got["reasons"] == ["infra-validate: v2 infer: 500"]


def test_the_first_failed_step_fails_the_run_with_its_class_and_exit_code():
    steps = [_step("ingest"), _failed("split", "ConfigError", 2, "2026-01-01T00:00:09"),
             _failed("validate", "SchemaViolation", 3)]  # fmt: skip
    got = outcome.derive(steps, "FAILED", "Task exit-handler-1 failed.")
    assert got["status"] == "failed" and got["failed_step"] == "validate"
    assert got["error_class"] == "SchemaViolation" and got["exit_code"] == 3


def test_a_deploy_failure_after_the_push_keeps_the_model_and_fails_the_run():
    steps = [_step("gate", **GATE), _step("push", **PUSH), _failed("deploy", "ConfigError", 2)]
    got = outcome.derive(steps, "FAILED")
    assert got["status"] == "failed" and got["failed_step"] == "deploy" and got["exit_code"] == 2
    assert got["model"] == {"name": "churn", "version": "3"} and got["blessed"] is True
    assert got["deploy"]["status"] == "failed" and "ConfigError" in got["deploy"]["error"]


def test_the_runner_failing_with_no_failed_record_fails_the_run():
    running = {"step": "train", "status": "running", "outputs": []}
    got = outcome.derive([_step("ingest"), running], "FAILED", "Task exit-handler-1 failed.")
    assert got["status"] == "failed" and got["failed_step"] == "train"
    assert got["exit_code"] == errors.PipelineFailed.exit_code
    assert "Task exit-handler-1 failed." in got["error"]
