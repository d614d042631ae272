"""manifests/monitoring: alerts checked and unit-tested by the real promtool, dashboard validated,
and every metric an alert or panel names is one a real server (or the monitor) exports.

promtool is Debian's (`apt-get install prometheus`; `make test` installs it).
"""

import json
import re
import shutil
import subprocess

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from kfops.monitor import exposition
from kfops.serving import app, model, server, settings
from kfops.store import local
from tests.kfops.serving import factories
from tests.manifests import conftest

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
RULE_TESTS = conftest.ROOT / "tests/manifests/rules"
DASHBOARD = conftest.ROOT / "manifests/monitoring/dashboard.json"
# Labels Prometheus adds to every scraped series (target labels), and the Pushgateway's grouping.
TARGET_LABELS = {"namespace", "job", "instance", "pod", "service", "le"}
# Grafana's variables, replaced by values of the same kind before promtool parses a panel query.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$namespace": "kfops"}
_METRIC = re.compile(r"\bkfops_[A-Za-z0-9_]+\b")


def _promtool(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, check=False, cwd=cwd, timeout=120
    )


@pytest.fixture(scope="module")
def rule(objects) -> dict:
    return conftest.find(objects["monitoring"], "PrometheusRule", "kfops")


@pytest.fixture(scope="module")
def rules_dir(rule, tmp_path_factory):
    """The rendered PrometheusRule's spec as a Prometheus rules file, next to the rule tests."""
    out = tmp_path_factory.mktemp("rules")
    (out / "kfops.rules.yaml").write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    for test in RULE_TESTS.glob("*.yaml"):
        shutil.copy(test, out / test.name)
    return out


def _alerts(rule: dict) -> dict[str, dict]:
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}


def _panel_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def test_monitoring_rules_pass_promtool_check(rules_dir):
    proc = _promtool("check", "rules", "kfops.rules.yaml", cwd=rules_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_monitoring_promtool_check_rejects_a_broken_expression(rules_dir, rule, tmp_path):
    broken = json.loads(json.dumps(rule["spec"]))
    broken["groups"][0]["rules"][0]["expr"] = "sum by (job) (rate(kfops_requests_total[5m])"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    proc = _promtool("check", "rules", "broken.yaml", cwd=tmp_path)
    assert proc.returncode != 0 and "unclosed" in proc.stdout + proc.stderr


@pytest.mark.parametrize("test_file", sorted(p.name for p in RULE_TESTS.glob("*.yaml")))
def test_monitoring_alert_unit_tests_pass(rules_dir, test_file):
    proc = _promtool("test", "rules", test_file, cwd=rules_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_monitoring_every_alert_has_a_test_that_fires_and_one_that_stays_silent(rule):
    alerts = _alerts(rule)
    assert {p.stem for p in RULE_TESTS.glob("*.yaml")} == set(alerts)
    for name in alerts:
        spec = yaml.safe_load((RULE_TESTS / f"{name}.yaml").read_text())
        cases = [c for t in spec["tests"] for c in t["alert_rule_test"]]
        assert {c["alertname"] for c in cases} == {name}
        assert any(c.get("exp_alerts") for c in cases), f"{name}: no case where it fires"
        assert any(not c.get("exp_alerts") for c in cases), f"{name}: no case where it is silent"


def test_monitoring_alert_tests_catch_a_wrong_threshold(rule, tmp_path):
    """A unit test fails when the rule is wrong: the error-rate line moved from 1 % to 10 %."""
    wrong = json.loads(json.dumps(rule["spec"]))
    high = wrong["groups"][0]["rules"][0]
    assert high["alert"] == "KfopsHighErrorRate"
    high["expr"] = high["expr"].replace("> 0.01", "> 0.1")
    (tmp_path / "kfops.rules.yaml").write_text(yaml.safe_dump(wrong))
    shutil.copy(RULE_TESTS / "KfopsHighErrorRate.yaml", tmp_path)
    proc = _promtool("test", "rules", "KfopsHighErrorRate.yaml", cwd=tmp_path)
    assert proc.returncode != 0 and "FAILED" in proc.stdout + proc.stderr


def test_monitoring_dashboard_is_a_grafana_dashboard(objects):
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in dashboard["panels"]:
        assert panel["type"] in {"timeseries", "stat", "table", "gauge"}, panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys() and panel["gridPos"]["w"] <= 24
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
    # Shipped as the ConfigMap Grafana's sidecar loads: the same JSON, with its label.
    configmap = conftest.find(objects["monitoring"], "ConfigMap", "kfops-grafana-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["kfops.json"]) == dashboard


def test_monitoring_dashboard_queries_parse_with_promtool(tmp_path):
    """Each panel query, Grafana variables filled in, as a recording rule promtool must parse."""
    queries = _panel_queries()
    for variable, value in GRAFANA_VARIABLES.items():
        queries = [q.replace(variable, value) for q in queries]
    assert not [q for q in queries if "$" in q], "a Grafana variable promtool cannot parse"
    rules = [{"record": f"kfops:panel_{i}", "expr": q} for i, q in enumerate(queries)]
    (tmp_path / "panels.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]})
    )
    proc = _promtool("check", "rules", "panels.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _scrape(pipeline, spec, df, tmp_path, name: str) -> str:
    """/metrics of a real server after V1, V2 and bad requests, with the inference log on."""
    source = model.MemorySource()
    source.add(name, pipeline, spec, "1")
    cfg = settings.ServeConfig(name=name, poll_seconds=0, log_flush_seconds=0.1)
    application = app.build_app(cfg, source, local.LocalStore(tmp_path / name))
    rows = factories.instances(df, 20)
    with server.running(application) as url, httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(3):
            assert client.post(f"/v1/models/{name}:predict", json={"instances": rows}).is_success
            v2 = {"inputs": factories.v2_inputs(rows)}
            assert client.post(f"/v2/models/{name}/infer", json=v2).is_success
        assert client.post(f"/v1/models/{name}:predict", json={"instances": []}).status_code < 500
        return client.get("/metrics").text


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, set[str]]:
    """Sample name -> its label names, from real servers (classifier and regressor) and from
    the monitor's exposition of a judged check with quality figures."""
    tmp = tmp_path_factory.mktemp("scrape")
    texts = [
        _scrape(*factories.classifier(), tmp, "churn"),
        _scrape(*factories.regressor(), tmp, "spend"),
    ]
    judged = {
        "model": "churn", "version": "3", "status": "judged", "retrain": True, "rows": 900,
        "judged_rows": 900, "drift_share": 0.3, "config": {"drift_share_threshold": 0.15},
        "quality": {"accuracy": 0.81},
    }  # fmt: skip
    texts.append(exposition.render(judged).decode())
    names: dict[str, set[str]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                names.setdefault(sample.name, set()).update(sample.labels)
    return names


def _referenced(expr: str) -> set[str]:
    return set(_METRIC.findall(expr))


def _label_names(expr: str) -> set[str]:
    grouped = re.findall(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)", expr)
    matched = re.findall(r"\{([^}]*)\}", expr)
    names = {n.strip() for g in grouped for n in g.split(",") if n.strip()}
    names |= {m for sel in matched for m in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", sel)}
    return names


def test_monitoring_servers_export_the_fast_path_and_log_counters(exported):
    """The scrape itself is real: the fast path's counters and the log outcomes are there."""
    assert {"model", "outcome"} <= exported["kfops_fast_path_predictions_total"]
    assert "kfops_inference_log_rows_total" in exported
    assert "kfops_prediction_value_bucket" in exported and "kfops_predictions_total" in exported


def test_monitoring_alerts_and_panels_name_only_exported_metrics_and_labels(rule, exported):
    queries = [r["expr"] for r in _alerts(rule).values()] + _panel_queries()
    missing = {m for q in queries for m in _referenced(q)} - exported.keys()
    assert not missing, f"alerts or panels name metrics nobody exports: {sorted(missing)}"
    all_labels = set().union(*exported.values()) | TARGET_LABELS
    for query in queries:
        unknown = _label_names(query) - all_labels
        assert not unknown, f"labels no exported metric has: {sorted(unknown)} in {query}"
    assert len(queries) > 20


def test_monitoring_name_check_catches_a_misspelt_metric(exported):
    query = 'sum(rate(kfops_request_total{endpoint="v2_infer"}[5m]))'
    assert _referenced(query) - exported.keys() == {"kfops_request_total"}
    assert _label_names("sum by (modle) (kfops_model_info)") - set().union(*exported.values())


def test_monitoring_servicemonitor_selects_the_server_service_port(objects):
    monitor = conftest.find(objects["monitoring"], "ServiceMonitor", "kfops-server")
    service = conftest.find(objects["base"], "Service", "kfops-server")
    labels = monitor["spec"]["selector"]["matchLabels"]
    assert labels.items() <= service["metadata"]["labels"].items()
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http"] and "http" in ports
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    pod = conftest.find(objects["base"], "Deployment", "kfops-server")["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    container = pod["spec"]["containers"][0]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(
        container["ports"][0]["containerPort"]
    )


def test_monitoring_push_cronjob_runs_the_exposition_module_with_its_configmap(objects):
    from kfops import __version__

    job = conftest.find(objects["monitoring"], "CronJob", "kfops-monitor-push")
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"ghcr.io/kfops/kfops:{__version__}"
    assert container["command"] == ["python", "-m", exposition.__name__, "push"]
    refs = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
    configmap = conftest.find(objects["monitoring"], "ConfigMap", refs[0])
    used = set(re.findall(r"\$\((\w+)\)", " ".join(container["args"])))
    assert used == set(configmap["data"]), "every $(VAR) from the ConfigMap, every key used"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
