"""Reports people open: `.html` files after a local run, and HTML reports kept in run records."""

import json

import numpy as np
import pandas as pd
import pytest

from kfops import errors, evaluate, runs, store
from kfops.reports import files, identity
from tests.kfops.fixed_models import Rule


@pytest.fixture
def st(tmp_path):
    return store.open_store(str(tmp_path / "store"))


def test_a_step_report_is_stored_even_when_the_step_then_fails(st):
    recorder = runs.RunRecorder(st, "run1")
    recorder.start("kfops-training", {"source": "builtin:churn"})
    with pytest.raises(errors.ValidationFailed):
        with recorder.step("validate") as step:
            step.report("validation", "<html>FAILED: 1 blocking</html>")
            raise errors.ValidationFailed([errors.SchemaViolation("x", "constant", "one value")])
    index = runs.RunIndex(st)
    assert index.show("run1")["reports"] == ["validation"]
    assert index.report("run1", "validation") == b"<html>FAILED: 1 blocking</html>"
    assert index.show("run1")["status"] == "failed"


def test_a_later_step_replaces_a_report_with_a_fuller_one(st):
    recorder = runs.RunRecorder(st, "run2")
    recorder.report("evaluation", "pending")
    recorder.report("evaluation", "BLESSED")
    assert runs.RunIndex(st).report("run2", "evaluation") == b"BLESSED"


def test_report_names_are_checked_and_missing_reports_are_not_found(st):
    recorder = runs.RunRecorder(st, "run3")
    with pytest.raises(errors.ConfigError):
        recorder.report("../escape", "x")
    recorder.start("kfops-training")
    with pytest.raises(errors.NotFound, match="no report 'evaluation'"):
        runs.RunIndex(st).report("run3", "evaluation")


def test_identity_reads_source_hashes_and_version_from_the_run_records(st):
    recorder = runs.RunRecorder(st, "run4")
    recorder.start("kfops-training", {"source": "data.csv", "model_name": "houses"})
    with recorder.step("ingest") as step:
        step.output("data", sha256="d" * 64, rows=10)
    with recorder.step("split") as step:
        step.output("test", sha256="t" * 64, rows=2)
    recorder.finish("succeeded", blessed=True, model={"name": "houses", "version": "4"})
    facts = identity.from_run(st, "run4", {"sha256": "m" * 64})
    assert facts == {
        "run_id": "run4",
        "model_sha256": "m" * 64,
        "data_source": "data.csv",
        "model_name": "houses",
        "data_sha256": "d" * 64,
        "test_sha256": "t" * 64,
        "model_version": "4",
    }
    assert identity.from_run(st, "nosuchrun") == {"run_id": "nosuchrun"}


def _outputs(tmp_path, blessed):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.integers(0, 2, 200)})
    df["score"] = np.clip(df["y"] * 0.4 + rng.random(200) * 0.6, 0, 1)
    ev = evaluate.evaluate(Rule(), df, evaluate.EvalConfig("y", "classification"))
    out = tmp_path / "outputs"
    for rel, content in {
        "validate/report": "<!doctype html><html>validation page</html>",
        "evaluate/evaluation": json.dumps(ev.to_dict()),
        "gate/blessing": json.dumps(
            {"blessed": blessed, "reasons": [] if blessed else ["champion: worse"], "checks": []}
        ),
        "champion/champion_evaluation": json.dumps({"exists": False}),
        "push/model_card": "# Model card: m\n\n## Model\n\n| field | value |\n|---|---|\n"
        "| task | `classification` |\n\n- a <b>note</b>\n",
    }.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(content, encoding="utf-8")
    return out


def test_write_run_reports_writes_html_files_that_carry_the_verdict(tmp_path):
    written = files.write_run_reports(
        _outputs(tmp_path, blessed=False), tmp_path / "reports", {"run_id": "r9"}
    )
    assert sorted(written) == ["evaluation", "model_card", "validation"]
    assert all(path.endswith(".html") for path in written.values())
    evaluation = open(written["evaluation"], encoding="utf-8").read()
    assert "NOT BLESSED" in evaluation and "champion: worse" in evaluation and "r9" in evaluation
    assert "validation page" in open(written["validation"], encoding="utf-8").read()


def test_write_run_reports_turns_the_model_card_into_html(tmp_path):
    written = files.write_run_reports(_outputs(tmp_path, blessed=True), tmp_path / "reports")
    card = open(written["model_card"], encoding="utf-8").read()
    assert "<h1>Model card: m</h1>" in card and "<h2>Model</h2>" in card
    assert "<th>field</th><th>value</th>" in card and "<td>task</td>" in card
    assert "<li>a &lt;b&gt;note&lt;/b&gt;</li>" in card  # escaped, never raw HTML
    assert "---" not in card
