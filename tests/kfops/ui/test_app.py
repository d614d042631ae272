"""`kfops ui` pages over a store with recorded runs, a registered model and a monitoring check."""

import html
import socket

import pytest
from starlette.testclient import TestClient

from kfops import cli, errors, registry, runs
from kfops.commands import ui as ui_cmd
from kfops.runs import monitoring
from kfops.ui import create_app


def _run(st, run_id, auc, blessed, source="data.csv", model=None):
    rec = runs.RunRecorder(st, run_id)
    rec.start("kfops-training", {"source": source, "model_name": "houses", "seed": 1})
    with rec.step("ingest", {"format": "csv"}) as step:
        step.output("data", sha256="d" * 64, rows=500)
    with rec.step("evaluate") as step:
        step.metric("roc_auc", auc)
        step.report(
            "evaluation", f"<!doctype html><html><body>evaluation of {run_id}</body></html>"
        )
    rec.finish(
        "succeeded", blessed=blessed, reasons=[] if blessed else ["roc_auc too low"], model=model
    )


@pytest.fixture
def st(any_store, tmp_path):
    """A local directory or a prefix in a bucket on a real S3 server (SeaweedFS)."""
    st = any_store
    _run(st, "run-a", 0.81, True, model={"name": "houses", "version": "1"})
    _run(st, "run-b", 0.62, False, source="other.csv")
    files = tmp_path / "m.joblib"
    files.write_bytes(b"model")
    reg = registry.Registry(st)
    lineage = {"run_id": "run-a", "source": "data.csv", "data_sha256": "d" * 64, "rows": 500}
    reg.register("houses", {"model.joblib": files}, {"lineage": lineage, "metrics": {"r2": 0.7}})
    reg.promote("houses", "1")
    result = {
        "model": "houses",
        "version": "1",
        "rows": 900,
        "drift_share": 0.4,
        "retrain": True,
        "reasons": ["drift share 0.40 > 0.15"],
        "notes": [],
        "quality": {},
    }
    monitoring.record(st, result, "<html>drift report</html>", run_id="mon-1")
    return st


@pytest.fixture
def client(st):
    return TestClient(create_app(st))


def test_runs_table_lists_every_run_with_status_verdict_and_key_metrics(client):
    page = client.get("/").text
    assert page.index("run-b") > 0 and "run-a" in page and "mon-1" in page
    assert "0.8100" in page and "0.6200" in page
    assert "not blessed" in page and "houses v1" in page


def test_run_page_shows_parameters_steps_reasons_and_report_links(client):
    page = client.get("/runs/run-b").text
    assert "roc_auc too low" in page
    assert "<td>source</td>" in page and "other.csv" in page
    assert "ingest" in page and "evaluate" in page
    assert "href='/runs/run-b/reports/evaluation'" in page


def test_report_route_serves_the_stored_report_sandboxed(client):
    response = client.get("/runs/run-a/reports/evaluation")
    assert response.status_code == 200 and "evaluation of run-a" in response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_compare_puts_runs_side_by_side_and_marks_differences(client):
    page = client.get("/compare?run=run-a&run=run-b").text
    changed = page.split("<tr class='changed'>")
    assert any("source" in row and "other.csv" in row for row in changed[1:])
    only = client.get("/compare?run=run-a&run=run-b&changed=1").text
    assert "<td>seed</td>" not in only and "<td>seed</td>" in page


def test_model_page_shows_versions_champion_lineage_and_monitoring(client):
    page = client.get("/models/houses").text
    assert "<b>champion</b>" in page
    assert "Lineage of v1" in page and "href='/runs/run-a'" in page
    assert "mon-1" in page and "<b>retrain</b>" in page and "0.4000" in page
    assert "href='/runs/mon-1/reports/monitoring'" in page


def test_unknown_run_model_and_report_answer_404_naming_them(client):
    assert "no run 'nope'" in html.unescape(client.get("/runs/nope").text)
    assert client.get("/runs/nope").status_code == 404
    assert client.get("/models/nope").status_code == 404
    response = client.get("/runs/run-b/reports/validation")
    assert response.status_code == 404
    assert "no report 'validation'" in html.unescape(response.text)
    assert client.get("/compare?run=run-a").status_code == 400


def test_the_ui_is_read_only(client, st):
    before = sorted(st.list(""))
    for path in ("/", "/runs/run-a", "/models/houses", "/runs/run-a/reports/evaluation"):
        assert client.post(path).status_code == 405
    assert sorted(st.list("")) == before


def test_pages_fetch_nothing_from_outside(client):
    for path in ("/", "/runs/run-a", "/models", "/models/houses", "/compare?run=run-a&run=run-b"):
        page = client.get(path).text
        assert "http://" not in page and "https://" not in page and "<script" not in page


def test_kfops_ui_refuses_a_port_in_use_and_a_missing_store(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "store").mkdir()
        code = cli.main(["ui", "--store", str(tmp_path / "store"), "--port", str(port)])
    err = capsys.readouterr().err
    assert code == errors.ConfigError.exit_code and f"port {port}" in err and "in use" in err
    code = cli.main(["ui", "--store", str(tmp_path / "nothing-here")])
    assert code == errors.NotFound.exit_code
    assert "no store at" in capsys.readouterr().err
    with pytest.raises(errors.ConfigError):
        ui_cmd.bind(70000)
