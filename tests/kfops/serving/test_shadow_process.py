"""The shadow challenger runs in its own process: where it predicts, what it sheds, how it dies.

Real servers, real HTTP, a real child process signalled with SIGSTOP/SIGKILL.
"""

import concurrent.futures
import json
import os
import signal
import time

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from kfops import labels, registry, rollout
from kfops.serving import app, model, server, settings
from tests.kfops.serving import factories, test_serve_command
from tests.kfops.serving.test_rollout_serving import (
    _events,
    _publish,
    _serving,
    _start,
    _traffic,
    shadow_ready,
    store,  # noqa: F401 (the fixture)
)


class Pid(ClassifierMixin, BaseEstimator):
    """Answers the id of the process that predicts: shows where the challenger ran."""

    def fit(self, x, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, x):
        return np.tile([0.5, 0.5], (len(x), 1))

    def predict(self, x):
        return np.full(len(x), os.getpid())


def _metric(client, outcome: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'kfops_shadow_requests_total{{outcome="{outcome}"}}'):
            return float(line.split()[-1])
    return 0.0


def _until(check, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_shadow_predicts_in_a_child_process_not_the_server(store, tmp_path):  # noqa: F811
    good, _, df = factories.classifier()
    _publish(store, tmp_path, good, Pid().fit(None, None))
    _start(store, "shadow")
    with _serving(store) as (client, application):
        lane = application.state.plane.rollout
        sent = _traffic(client, df, 20)
        _until(lambda: _metric(client, "answered") == 20)
        child = lane.worker.pid
    assert {r.status_code for _, r in sent} == {200}
    events = _events(store)
    shadow = events[events[rollout.ROLE] == "shadow"]
    assert sorted(shadow[labels.REQUEST_ID]) == sorted(rid for rid, _ in sent)
    assert child != os.getpid()
    assert set(shadow[rollout.PREDICTION]) == {str(child)}
    # the champion's answers are logged beside them, by the child, under the same request ids
    champion = events[events[rollout.ROLE] == "champion"]
    assert sorted(champion[labels.REQUEST_ID]) == sorted(rid for rid, _ in sent)


def test_a_child_that_falls_behind_sheds_shadow_work_and_counts_it(store, tmp_path):  # noqa: F811
    good, spec, df = factories.classifier()
    _publish(store, tmp_path, good, good)
    _start(store, "shadow")
    cfg = settings.ServeConfig(name="churn", poll_seconds=0.1, log_flush_seconds=0.2)
    application = app.build_app(cfg, model.RegistrySource(registry.Registry(store)), store)
    application.state.plane.rollout.pipe_bytes = 4096  # a page: a few one-row requests
    with server.running(application) as url, httpx.Client(base_url=url, timeout=30) as client:
        shadow_ready(application)
        lane = application.state.plane.rollout
        os.kill(lane.worker.pid, signal.SIGSTOP)  # behind: it takes nothing from the pipe
        try:
            start = time.perf_counter()
            sent = _traffic(client, df, 60)
            took = time.perf_counter() - start
            dropped = _metric(client, "dropped")
        finally:
            os.kill(lane.worker.pid, signal.SIGCONT)
        _until(lambda: _metric(client, "answered") + _metric(client, "dropped") == 60)
    assert {r.status_code for _, r in sent} == {200}
    assert took < 30  # nobody waited on the stopped child
    assert 0 < dropped < 60 and lane.dropped == dropped
    # every request still has its champion event; only the taken ones have a shadow one
    events = _events(store)
    champion = events[events[rollout.ROLE] == "champion"]
    assert sorted(champion[labels.REQUEST_ID]) == sorted(rid for rid, _ in sent)
    assert (events[rollout.ROLE] == "shadow").sum() == 60 - dropped


def test_a_killed_child_turns_shadow_off_and_the_champion_keeps_answering(store, tmp_path):  # noqa: F811
    good, spec, df = factories.classifier()
    _publish(store, tmp_path, good, good)
    _start(store, "shadow")
    with _serving(store) as (client, application):
        lane = application.state.plane.rollout
        os.kill(lane.worker.pid, signal.SIGKILL)
        _until(lambda: lane.worker.off)  # the server saw its pipe close
        sent = _traffic(client, df, 20)
        off = _metric(client, "off")
        assert client.get("/v2/health/ready").status_code == 200
    assert {r.status_code for _, r in sent} == {200}
    assert {r.json()["model_version"] for _, r in sent} == {"1"}
    assert off == 20
    frame = pd.DataFrame(factories.instances(df, 20, 0), columns=spec.feature_names)
    champion = _events(store).query(f"{rollout.ROLE} == 'champion'")
    assert list(champion.set_index(labels.REQUEST_ID).loc[[rid for rid, _ in sent]][
        rollout.PREDICTION]) == list(good.predict(frame).astype(str))  # fmt: skip


def test_sigterm_drains_the_shadow_child_and_flushes_both_answers(store, tmp_path):  # noqa: F811
    """Kubernetes signals the server only: the child drains on the pipe's end, not a signal."""
    good, _, df = factories.classifier()
    _publish(store, tmp_path, good, good)
    _start(store, "shadow")  # the pointer only dates the events; the flag fixes the plan
    proc, url = test_serve_command._start(
        store, "--challenger", "2", "--log-flush-seconds", "3600", "--poll-interval", "0"
    )
    body = {"instances": factories.instances(df, 1)}
    with httpx.Client(base_url=url, timeout=30) as client:
        _until(lambda: client.post("/v1/models/churn:predict", json=body).status_code == 200
               and _metric(client, "answered") > 0, seconds=180)  # fmt: skip
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(test_serve_command._hammer, url, body, w) for w in range(2)]
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        answered = [rid for f in futures for rid in f.result(timeout=60)]
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-2000:]
    logs = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    (child,) = [e["pid"] for e in logs if e["msg"] == "shadow worker started"]
    with pytest.raises(ProcessLookupError):  # exited and reaped: no orphan left behind
        os.kill(child, 0)
    events = _events(store)
    assert len(answered) > 10
    for role in ("champion", "shadow"):
        ids = events.loc[events[rollout.ROLE] == role, labels.REQUEST_ID]
        assert set(answered) <= set(ids), role  # the warm-up requests are logged too
