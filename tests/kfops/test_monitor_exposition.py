"""The monitor's outcome as Prometheus metrics: written by every check, pushed to a real
Pushgateway (Debian's prometheus-pushgateway; `make test` installs it) and read back as scraped."""

import shutil
import socket
import subprocess
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kfops import errors, monitor
from kfops.monitor import exposition
from kfops.store import local
from tests.fixtures.monitoring import make_frame, model_store, scored_log, write_logs  # noqa: F401

PUSHGATEWAY = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"
JUDGED = {
    "model": "churn", "version": "3", "status": "judged", "retrain": True, "rows": 900,
    "judged_rows": 800, "drift_share": 0.4, "config": {"drift_share_threshold": 0.15},
    "quality": {"accuracy": 0.8, "roc_auc": 0.9},
}  # fmt: skip


def _samples(text: str) -> dict[tuple, float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def _value(text: str, name: str, **labels) -> float | None:
    for (n, found), value in _samples(text).items():
        if n == name and labels.items() <= dict(found).items():
            return value
    return None


@pytest.fixture
def pushgateway(tmp_path):
    """A real Pushgateway on a free loopback port; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            if httpx.get(f"{url}/-/ready", trust_env=False).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and proc.poll() is None, "pushgateway did not start"
        time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(10)


def test_exposition_renders_the_decision_drift_share_and_quality():
    text = exposition.render(JUDGED, now=1_700_000_000).decode()
    labels = {"model": "churn", "version": "3"}
    assert _value(text, "kfops_monitor_retrain", **labels) == 1.0
    assert _value(text, "kfops_monitor_judged", **labels) == 1.0
    assert _value(text, "kfops_monitor_drift_share", **labels) == 0.4
    assert _value(text, "kfops_monitor_drift_share_threshold", **labels) == 0.15
    assert _value(text, "kfops_monitor_last_run_timestamp_seconds") == 1_700_000_000
    assert _value(text, "kfops_monitor_quality", metric="roc_auc") == 0.9
    assert (_value(text, "kfops_monitor_rows"), _value(text, "kfops_monitor_judged_rows")) == (
        900, 800,
    )  # fmt: skip


def test_exposition_exports_no_drift_share_for_a_check_that_could_not_judge():
    unjudged = {**JUDGED, "status": "too_small", "retrain": False, "drift_share": None}
    text = exposition.render(unjudged).decode()
    assert _value(text, "kfops_monitor_judged") == 0.0
    assert _value(text, "kfops_monitor_retrain") == 0.0
    assert _value(text, "kfops_monitor_drift_share") is None


def test_every_monitor_check_writes_its_metrics_into_the_store(model_store):  # noqa: F811
    from kfops import registry

    pipe = registry.Registry(model_store).load("churn").pipeline
    write_logs(model_store, scored_log(pipe, make_frame(800, seed=20, shift=("tenure", "calls"))))
    cfg = monitor.MonitorConfig(min_rows=100, drift_share_threshold=0.3)
    result = monitor.monitor_model(model_store, "churn", cfg)
    text = model_store.get_bytes(exposition.key("churn")).decode()
    assert result.retrain and _value(text, "kfops_monitor_retrain", version="1") == 1.0
    assert _value(text, "kfops_monitor_drift_share") == pytest.approx(result.drift_share)
    assert _value(text, "kfops_monitor_drift_share_threshold") == 0.3


def test_push_replaces_the_model_group_on_a_real_pushgateway(tmp_path, pushgateway):
    store = local.LocalStore(tmp_path / "store")
    exposition.write(store, JUDGED, now=1_700_000_000)
    assert exposition.main(["push", "--store", str(tmp_path / "store"), "--name", "churn",
                            "--pushgateway", pushgateway]) == 0  # fmt: skip
    scraped = httpx.get(f"{pushgateway}/metrics", trust_env=False).text
    group = {"job": "kfops-monitor", "model": "churn", "version": "3"}
    assert _value(scraped, "kfops_monitor_drift_share", **group) == 0.4
    assert _value(scraped, "kfops_monitor_retrain", **group) == 1.0
    # The next check could not judge: PUT replaces the group, so the old drift share is gone.
    exposition.write(store, {**JUDGED, "status": "no_data", "retrain": False})
    exposition.push(store, "churn", pushgateway)
    scraped = httpx.get(f"{pushgateway}/metrics", trust_env=False).text
    assert _value(scraped, "kfops_monitor_drift_share", **group) is None
    assert _value(scraped, "kfops_monitor_retrain", **group) == 0.0


def test_push_names_what_is_missing_in_one_line(tmp_path, pushgateway, capsys):
    argv = ["push", "--store", str(tmp_path / "empty"), "--name", "churn"]
    assert exposition.main([*argv, "--pushgateway", pushgateway]) == errors.NotFound.exit_code
    store = local.LocalStore(tmp_path / "s")
    exposition.write(store, JUDGED)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    code = exposition.main(["push", "--store", str(tmp_path / "s"), "--name", "churn",
                            "--pushgateway", dead])  # fmt: skip
    assert code == errors.StorageError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)
    assert "churn" in err[0] and "Pushgateway" in err[1]
