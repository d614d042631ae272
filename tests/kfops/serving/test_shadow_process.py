"""The shadow challenger runs in its own process: where it predicts, what it sheds, how it dies.

Real servers, real HTTP, a real child process signalled with SIGSTOP/SIGKILL.
"""

import concurrent.futures
import contextlib
import json
import os
import signal
import threading
import time

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from kfops import cli, errors, labels, registry, rollout
from kfops.serving import app, challenger, model, server, settings, shadow
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


@contextlib.contextmanager
def _pid_shadow(store, tmp_path):  # noqa: F811
    """v1 serves, v2 (a Pid model) shadows it: yields the client, the rollout lane, the rows."""
    good, _, df = factories.classifier()
    _publish(store, tmp_path, good, Pid().fit(None, None))
    _start(store, "shadow")
    with _serving(store) as (client, application):
        yield client, application.state.plane.rollout, df


def _until(check, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_shadow_predicts_in_a_child_process_not_the_server(store, tmp_path):  # noqa: F811
    with _pid_shadow(store, tmp_path) as (client, lane, df):
        sent = _traffic(client, df, 20)
        _until(lambda: _metric(client, "answered") == 20)
        child = lane.worker.pid
        # it answered, so it is past start-up: it predicts only on CPU the server leaves idle,
        # and so do its other threads (the event log's writer, started before it lowered itself)
        others = [int(t) for t in os.listdir(f"/proc/{child}/task") if int(t) != child]
        assert os.sched_getscheduler(child) == os.SCHED_IDLE and others
        assert {os.sched_getscheduler(t) for t in others} == {os.SCHED_IDLE}
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
        finally:
            os.kill(lane.worker.pid, signal.SIGCONT)
        _until(lambda: _metric(client, "answered") + _metric(client, "dropped") == 60)
        dropped = _metric(client, "dropped")  # the last batch is sent after its 20 ms
    assert {r.status_code for _, r in sent} == {200}
    assert took < 30  # nobody waited on the stopped child
    assert 0 < dropped < 60 and lane.dropped == dropped
    # every request still has its champion event; only the taken ones have a shadow one
    events = _events(store)
    champion = events[events[rollout.ROLE] == "champion"]
    assert sorted(champion[labels.REQUEST_ID]) == sorted(rid for rid, _ in sent)
    assert (events[rollout.ROLE] == "shadow").sum() == 60 - dropped


def test_a_killed_child_is_restarted_after_its_backoff_and_shadowing_resumes(store, tmp_path):  # noqa: F811
    good, spec, df = factories.classifier()
    _publish(store, tmp_path, good, Pid().fit(None, None))
    _start(store, "shadow")
    with _serving(store) as (client, application):
        lane = application.state.plane.rollout
        first = lane.worker
        os.kill(first.pid, signal.SIGKILL)
        _until(lambda: first.off)  # the server saw its pipe close
        sent, deadline = _traffic(client, df, 1), time.monotonic() + 60  # 1: inside the backoff
        while lane.worker is first:
            assert time.monotonic() < deadline, "the shadow child was not restarted"
            sent += _traffic(client, df, 1, start=len(sent))
            time.sleep(0.05)
        shadow_ready(application)
        off, answered = _metric(client, "off"), _metric(client, "answered")
        resumed = _traffic(client, df, 20, start=len(sent))
        _until(lambda: _metric(client, "answered") == answered + 20)
        restarts = [line for line in client.get("/metrics").text.splitlines()
                    if line.startswith("kfops_shadow_restarts_total ")]  # fmt: skip
        second = lane.worker
    assert {r.status_code for _, r in sent + resumed} == {200}
    assert {r.json()["model_version"] for _, r in sent + resumed} == {"1"}
    assert second.started_at - first.lost_at >= challenger.RESTART_FIRST
    assert off >= 1 and lane.restarts == 1 and restarts == ["kfops_shadow_restarts_total 1.0"]
    assert second.pid not in (first.pid, os.getpid())
    events = _events(store).set_index(labels.REQUEST_ID)
    shadow = events[events[rollout.ROLE] == "shadow"]
    assert set(shadow.loc[[rid for rid, _ in resumed], rollout.PREDICTION]) == {str(second.pid)}
    frame = pd.DataFrame(factories.instances(df, len(sent), 0), columns=spec.feature_names)
    champion = events[events[rollout.ROLE] == "champion"]
    assert list(champion.loc[[rid for rid, _ in sent], rollout.PREDICTION]) == list(
        good.predict(frame).astype(str)
    )


def test_a_child_that_dies_at_start_is_restarted_with_a_doubling_backoff(
    store,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """Not once per request: each replacement waits twice as long as the one before."""
    good, _, df = factories.classifier()
    _publish(store, tmp_path, good, good)
    _start(store, "shadow")
    monkeypatch.setattr(challenger, "RESTART_FIRST", 0.25)
    started = []

    class Recorded(shadow.ShadowProcess):
        def start(self):
            started.append(self)
            super().start()

    monkeypatch.setattr(challenger.shadow, "ShadowProcess", Recorded)
    cfg = settings.ServeConfig(name="churn", poll_seconds=0.1, log_flush_seconds=0.2)
    application = app.build_app(cfg, model.RegistrySource(registry.Registry(store)), store)
    lane = application.state.plane.rollout
    lane.worker_spec["store"] = "gs://no-such-store"  # the child exits before it is ready
    with server.running(application) as url, httpx.Client(base_url=url, timeout=30) as client:
        sent = []
        deadline = time.monotonic() + 120
        while len(started) < 4:
            assert time.monotonic() < deadline, f"{len(started)} starts"
            sent += _traffic(client, df, 1, start=len(sent))
        _until(lambda: started[-1].off)
        off = _metric(client, "off")
    assert {r.status_code for _, r in sent} == {200}
    assert not any(w.ready for w in started) and lane.restarts == len(started) - 1 == 3
    for k, (dead, new) in enumerate(zip(started, started[1:], strict=False)):
        assert new.started_at - dead.lost_at >= 0.25 * 2**k
    assert off >= 3  # each backoff turned requests away
    assert len(sent) > 3 * len(started)  # many requests, few starts


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


class _WriteSpy:
    """`os` as kfops.serving.shadow sees it; notes which thread writes (the writes are real)."""

    def __init__(self):
        self.threads = []

    def __getattr__(self, name):
        return getattr(os, name)

    def write(self, fd, data):
        self.threads.append(threading.get_ident())
        return os.write(fd, data)


def test_closing_from_another_thread_mid_frame_hands_the_child_whole_frames(
    store,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """The rollout ends (poll thread) while a frame sits half in a full pipe: the loop alone
    finishes it before the pipe closes (one writer), and the child answers the whole frame."""
    spy = _WriteSpy()
    monkeypatch.setattr(shadow, "os", spy)
    good, _, df = factories.classifier()
    _publish(store, tmp_path, good, good)
    _start(store, "shadow")
    cfg = settings.ServeConfig(name="churn", poll_seconds=3600, log_flush_seconds=0.2)
    application = app.build_app(cfg, model.RegistrySource(registry.Registry(store)), store)
    lane = application.state.plane.rollout
    lane.pipe_bytes = 4096
    with server.running(application) as url, httpx.Client(base_url=url, timeout=30) as client:
        shadow_ready(application)
        worker = lane.worker
        os.kill(worker.pid, signal.SIGSTOP)
        resume = threading.Timer(1.0, os.kill, (worker.pid, signal.SIGCONT))
        try:
            # Over PIPE_BUF (4 KiB) a non-blocking write may be partial; under it, all or nothing.
            body = {"instances": factories.instances(df, 200) * 3}  # ~13 KB: over any small pipe
            sent = [client.post("/v1/models/churn:predict", json=body)]
            _until(lambda: worker._backlog)  # the pipe took only part of the frame
            resume.start()
            worker.close()  # this thread is not the event loop's
        finally:
            resume.cancel()
            with contextlib.suppress(ProcessLookupError):  # exited: continued by the timer
                os.kill(worker.pid, signal.SIGCONT)
        _until(lambda: _metric(client, "answered") + _metric(client, "failed") >= 1)
        answered, dropped = _metric(client, "answered"), _metric(client, "dropped")
    assert worker.proc.returncode == 0 and sent[0].status_code == 200
    assert len(spy.threads) >= 2 and len(set(spy.threads)) == 1  # the frame's head and tail
    assert threading.get_ident() not in spy.threads
    assert (answered, dropped, lane.failed) == (1, 0, 0)


def test_the_server_keeps_no_copy_of_a_shadow_challenger_the_child_loads_it(store, tmp_path):  # noqa: F811
    with _pid_shadow(store, tmp_path) as (client, lane, df):
        sent = _traffic(client, df, 5)
        _until(lambda: _metric(client, "answered") == 5)
        plan, held = lane.state
    assert (plan.version, held) == ("2", None) and lane.worker.loaded
    assert {r.json()["model_version"] for _, r in sent} == {"1"}


def test_a_shadow_challenger_that_cannot_load_is_reported_by_the_child(store, tmp_path):  # noqa: F811
    """The server does not load it, so the child says so; each request is a failed event."""
    good, _, df = factories.classifier()
    _publish(store, tmp_path, good, good)
    (store.root / "models/churn/2/model.joblib").write_bytes(b"not the registered bytes")
    _start(store, "shadow")
    with _serving(store) as (client, application):
        lane = application.state.plane.rollout
        assert lane.worker.ready and not lane.worker.loaded
        sent = _traffic(client, df, 5)
        _until(lambda: _metric(client, "failed") == 5)
    assert {r.status_code for _, r in sent} == {200}
    shadow = _events(store).query(f"{rollout.ROLE} == 'shadow'")
    assert set(shadow[rollout.ERROR]) == {"IntegrityError"}


def test_serve_refuses_a_missing_shadow_challenger_in_one_line(store, tmp_path, capsys):  # noqa: F811
    good, _, _ = factories.classifier()
    _publish(store, tmp_path, good, good)
    argv = ["serve", "--name", "churn", "--store", str(store.root), "--port", "0"]
    assert cli.main([*argv, "--challenger", "9"]) == errors.NotFound.exit_code
    err = capsys.readouterr().err.strip()  # after the champion's "model loaded" log line
    assert "Traceback" not in err
    line = err.splitlines()[-1]
    assert line == f"kfops: error: model 'churn' has no version 9 in {store.root} (versions: 1, 2)"
