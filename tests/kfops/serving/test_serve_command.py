"""`kfops serve` as a real process: registry load, SIGTERM drain + log flush, workers, JSON logs."""

import concurrent.futures
import io
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest
import tritonclient.grpc as grpcclient

from kfops import cli, logschema, registry
from kfops.commands import serve
from kfops.store import local
from tests.kfops.serving import factories, triton


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def published(tmp_path, clf):
    store = local.LocalStore(tmp_path / "store")
    factories.publish(registry.Registry(store), "churn", clf[0], clf[1], tmp_path)
    return store


def _start(store, *extra):
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "kfops.cli",
        "serve",
        "--store",
        store.uri,
        "--name",
        "churn",
        "--port",
        str(port),
        *extra,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"server did not start: {proc.communicate()[1][-2000:]}")


def _logs(store) -> pd.DataFrame:
    keys = list(store.list(logschema.log_prefix("churn")))
    return (
        pd.concat(
            [pq.read_table(io.BytesIO(store.get_bytes(k))).to_pandas() for k in keys],
            ignore_index=True,
        )
        if keys
        else pd.DataFrame()
    )


def _hammer(url, body, worker):
    """Sends requests until the server goes away; returns the ids of answered requests."""
    answered, i = [], 0
    with httpx.Client(base_url=url, timeout=30) as client:
        while True:
            rid = f"w{worker}-{i}"
            try:
                r = client.post(
                    "/v1/models/churn:predict", json=body, headers={"x-request-id": rid}
                )
            except httpx.TransportError:
                return answered
            assert r.status_code == 200, r.text
            answered.append(rid)
            i += 1


def test_serve_sigterm_under_load_drains_and_flushes_every_log_record(published, clf):
    proc, url = _start(published, "--log-flush-seconds", "3600", "--poll-interval", "0")
    body = {"instances": factories.instances(clf[2], 2)}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(_hammer, url, body, w) for w in range(4)]
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        answered = [rid for f in futures for rid in f.result(timeout=60)]
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
    logs = _logs(published)
    assert len(answered) > 10
    assert sorted(set(logs[logschema.REQUEST_ID])) == sorted(answered)
    assert len(logs) == 2 * len(answered)
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert {"serving", "inference log flushed"} <= {e["msg"] for e in events}


def test_serve_with_two_workers_answers_and_stops_cleanly(published, clf):
    proc, url = _start(published, "--workers", "2", "--poll-interval", "0")
    try:
        rows = factories.instances(clf[2], 3)
        with httpx.Client(base_url=url, timeout=30) as client:
            answers = [
                client.post("/v1/models/churn:predict", json={"instances": rows}) for _ in range(20)
            ]
        assert {r.status_code for r in answers} == {200}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert len(_logs(published)) == 60
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    # Each worker logs as JSON too (a spawned worker configures its own logging).
    assert [e["msg"] for e in events].count("serving") == 2
    assert [e["msg"] for e in events].count("inference log flushed") == 2


def test_serve_exits_with_storage_code_when_model_is_not_registered(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "kfops.cli",
        "serve",
        "--store",
        str(tmp_path),
        "--name",
        "nope",
        "--port",
        str(_free_port()),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 4
    assert "unknown model 'nope'" in done.stderr, done.stderr


def _config(*flags):
    return serve.serve_config(
        cli.build_parser("serve").parse_args(["serve", "--name", "m", *flags])
    )


def test_serve_flags_leave_range_check_off_by_default():
    assert _config().check_range is False
    assert _config("--no-range-check").check_range is False
    assert _config("--range-check").check_range is True


def test_serve_flags_set_micro_batching():
    assert _config().batch_window_ms > 0
    cfg = _config("--batch-window-ms", "0", "--batch-max-rows", "32")
    assert (cfg.batch_window_ms, cfg.batch_max_rows) == (0, 32)


def test_serve_flags_turn_grpc_on_only_when_asked():
    assert _config().grpc_port is None
    assert _config("--grpc-port", "8081").grpc_port == 8081


def test_the_committed_grpc_descriptor_is_generated_from_the_proto():
    script = Path(__file__).resolve().parents[3] / "scripts" / "grpc_descriptor.py"
    check = [sys.executable, str(script), "--check"]
    done = subprocess.run(check, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_sigterm_lets_slow_requests_in_flight_finish_and_refuses_new_connections(
    tmp_path, monkeypatch
):
    """Four requests are inside a predict that takes 3 s when SIGTERM arrives: each still gets
    its 200 with the right answer, while new connections are refused at once."""
    pipeline, spec, df = factories.slow_classifier()
    store = local.LocalStore(tmp_path / "store")
    factories.publish(registry.Registry(store), "churn", pipeline, spec, tmp_path)
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv(factories.SLOW_SECONDS_ENV, "3")
    monkeypatch.setenv(factories.SLOW_MARKER_ENV, str(markers))
    proc, url = _start(store, "--poll-interval", "0", "--log-sample-rate", "0")
    port = int(url.rsplit(":", 1)[1])
    rows = [factories.instances(df, 3, start) for start in (0, 3, 6, 9)]

    def predict(instances):
        return httpx.post(
            f"{url}/v1/models/churn:predict", json={"instances": instances}, timeout=60
        )

    with concurrent.futures.ThreadPoolExecutor(len(rows)) as pool:
        answers = [pool.submit(predict, r) for r in rows]
        deadline = time.monotonic() + 30
        while not any(markers.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # the other requests join the batch in the model or queue behind it
        assert not any(a.done() for a in answers), "the model was supposed to be slow"
        proc.send_signal(signal.SIGTERM)
        refused_at = _refused_within(port, seconds=2.5)
        assert not all(a.done() for a in answers), "drained before refusal was observed"
        results = [a.result(timeout=60) for a in answers]
    assert refused_at is not None, "the server kept accepting connections after SIGTERM"
    for r, instances in zip(results, rows, strict=True):
        assert r.status_code == 200, r.text
        expected = pipeline.predict(pd.DataFrame(instances, columns=spec.feature_names))
        assert r.json()["predictions"] == expected.tolist()
    proc.communicate(timeout=60)
    assert proc.returncode == 0


def _refused_within(port: int, seconds: float) -> float | None:
    """Seconds until a new TCP connection to the port is refused (None: never, in time)."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except ConnectionRefusedError:
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def test_serve_grpc_port_with_two_workers_answers_tritonclient_grpc(published, clf):
    """`kfops serve --grpc-port` as a real process: both workers share the port (SO_REUSEPORT)."""
    grpc_port = _free_port()
    proc, _ = _start(
        published, "--workers", "2", "--grpc-port", str(grpc_port), "--poll-interval", "0"
    )
    try:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        deadline = time.monotonic() + 30
        while not client.is_server_ready() and time.monotonic() < deadline:
            time.sleep(0.1)
        columns = triton.arrays(clf[2], 0, 4, nulls=True)
        for _ in range(10):
            result = client.infer("churn", triton.inputs(grpcclient, columns))
            triton.assert_answers(result, clf[0], columns)
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
    assert len(_logs(published)) == 40


def test_sigterm_lets_a_slow_grpc_call_in_flight_finish(tmp_path, monkeypatch):
    pipeline, spec, df = factories.slow_classifier()
    store = local.LocalStore(tmp_path / "store")
    factories.publish(registry.Registry(store), "churn", pipeline, spec, tmp_path)
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv(factories.SLOW_SECONDS_ENV, "3")
    monkeypatch.setenv(factories.SLOW_MARKER_ENV, str(markers))
    grpc_port = _free_port()
    proc, _ = _start(store, "--grpc-port", str(grpc_port), "--poll-interval", "0")
    columns = triton.arrays(df, 0, 3, nulls=False)
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(client.infer, "churn", triton.inputs(grpcclient, columns))
        deadline = time.monotonic() + 30
        while not any(markers.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not answer.done()
        proc.send_signal(signal.SIGTERM)
        triton.assert_answers(answer.result(timeout=60), pipeline, columns)
    client.close()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
