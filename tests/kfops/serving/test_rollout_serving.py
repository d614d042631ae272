"""Shadow and canary with real servers and real HTTP traffic, and the verdict on what they logged.

The champion and the challenger are registered in a real store; the server follows the rollout
pointer like the champion pointer; labels arrive through the labels store; `kfops rollout decide`
reads what the server logged and moves the champion pointer (or not).
"""

import contextlib
import time
import uuid

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from kfops import cli, labels, registry, rollout
from kfops.serving import app, challenger, model, server, settings
from kfops.store import local
from tests.kfops.serving import factories


class Exploding(ClassifierMixin, BaseEstimator):
    """Answers the warm-up row (charges 70.0) and raises on the others: a challenger that breaks."""

    def fit(self, x, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, x):
        charges = np.asarray(pd.DataFrame(x)["charges"], dtype=float)
        if (charges != 70.0).any():
            raise RuntimeError("challenger bug")
        return np.tile([0.5, 0.5], (len(charges), 1))

    def predict(self, x):
        return self.predict_proba(x).argmax(axis=1)


def _bad(spec, df):
    """Fit on shuffled labels: about as good as guessing."""
    pipe = factories.classifier()[0]
    shuffled = df["churned"].sample(frac=1, random_state=3).to_numpy()
    return pipe.fit(df[spec.feature_names], shuffled)


def _inverted(spec, df):
    """Fit on inverted labels: wrong where the champion is right (a clearly worse version).

    The canary sides see different random requests, so a challenger only slightly worse would
    make the verdict depend on the draw.
    """
    pipe = factories.classifier()[0]
    return pipe.fit(df[spec.feature_names], 1 - df["churned"])


@pytest.fixture
def store(tmp_path):
    return local.LocalStore(tmp_path / "store")


def _publish(store, tmp_path, *pipelines):
    """Registers each pipeline in order; the first is champion. Returns (spec, frame)."""
    _, spec, df = factories.classifier()
    reg = registry.Registry(store)
    for i, pipe in enumerate(pipelines):
        factories.publish(reg, "churn", pipe, spec, tmp_path, promote=i == 0)
    return spec, df


@contextlib.contextmanager
def _serving(store, **overrides):
    cfg = settings.ServeConfig(
        name="churn", **{"poll_seconds": 0.1, "log_flush_seconds": 0.2, **overrides}
    )
    application = app.build_app(cfg, model.RegistrySource(registry.Registry(store)), store)
    with server.running(application) as url, httpx.Client(base_url=url, timeout=30) as client:
        shadow_ready(application)
        yield client, application


def shadow_ready(application, seconds=180.0):
    """Waits for the shadow child (if any) to have loaded the challenger: a fresh interpreter
    importing scikit-learn takes seconds, more on a loaded machine."""
    lane = application.state.plane.rollout
    deadline = time.monotonic() + seconds
    while lane is not None and lane.worker is not None and not lane.worker.ready:
        assert time.monotonic() < deadline, "the shadow process never became ready"
        time.sleep(0.1)


def _traffic(client, df, n, headers=None, start=0):
    """n one-row V1 requests with fresh request ids: [(request id, response)]."""
    out = []
    for i in range(n):
        rid = uuid.uuid4().hex
        row = factories.instances(df, 1, (start + i) % len(df))
        r = client.post(
            "/v1/models/churn:predict",
            json={"instances": row, "parameters": {"probabilities": True}},
            headers={"x-request-id": rid, **(headers or {})},
        )
        out.append((rid, r))
    return out


def _deliver_truth(store, sent, df, start=0):
    truth = [df["churned"].iloc[(start + i) % len(df)] for i in range(len(sent))]
    frame = pd.DataFrame({"request_id": [rid for rid, _ in sent], "label": truth})
    labels.deliver(store, "churn", frame)


def _cli(store, *argv):
    return cli.main([*argv, "--store", str(store.root)])


def _start(store, mode, share=0.1):
    assert _cli(store, "rollout", "start", "churn", "--challenger", "2", "--mode", mode,
                "--share", str(share), "--by", "test") == 0  # fmt: skip


def _wait_for_events(store, n):
    # The shadow child writes its events on idle CPU only: on a machine busy with other work
    # they may wait a while for a free moment (kfops.serving.shadow._background).
    deadline = time.monotonic() + 60
    while len(_events(store)) < n and time.monotonic() < deadline:
        time.sleep(0.1)


def shadowed_traffic(store, tmp_path, n):
    """A shadow rollout of a good challenger (v2) beside a bad champion (v1), `n` requests served
    and both answers' events written; returns (sent, rows) for `_deliver_truth`."""
    good, spec, df = factories.classifier()
    _publish(store, tmp_path, _bad(spec, df), good)
    _start(store, "shadow")
    with _serving(store) as (client, _):
        sent = _traffic(client, df, n)
        _wait_for_events(store, 2 * n)
    return sent, df


def _events(store):
    return rollout.read_events(store, "churn", rollout.pointer(registry.Registry(store), "churn"))


def test_shadow_logs_both_answers_with_one_request_id_and_answers_with_the_champion(
    store, tmp_path
):
    good, spec, df = factories.classifier()
    _publish(store, tmp_path, good, _bad(spec, df))
    _start(store, "shadow")
    with _serving(store) as (client, application):
        sent = _traffic(client, df, 40)
        lane = application.state.plane.rollout
    frame = pd.DataFrame(factories.instances(df, 40, 0), columns=spec.feature_names)
    expected = good.predict_proba(frame)[:, 1]
    for (_, r), p in zip(sent, expected, strict=True):
        assert r.status_code == 200 and r.json()["model_version"] == "1"
        assert r.headers["x-model-version"] == "1"
        assert r.json()["probabilities"][0][1] == pytest.approx(p, rel=1e-9)
    assert lane.dropped == 0
    events = _events(store)
    by_id = events.groupby(labels.REQUEST_ID)[rollout.VERSION].apply(sorted)
    assert len(by_id) == 40 and all(v == ["1", "2"] for v in by_id)
    assert set(events[rollout.ROLE]) == {"champion", "shadow"}
    shadow = events[events[rollout.ROLE] == "shadow"].set_index(labels.REQUEST_ID)
    challenger_says = _bad(spec, df).predict(frame).astype(str)
    assert list(shadow.loc[[rid for rid, _ in sent], rollout.PREDICTION]) == list(challenger_says)


def test_shadow_challenger_that_raises_fails_no_request_and_is_aborted(store, tmp_path):
    good, spec, df = factories.classifier()
    _publish(store, tmp_path, good, Exploding().fit(None, None))
    _start(store, "shadow")
    with _serving(store) as (client, _):
        sent = _traffic(client, df, 60)
        for _ in range(400):  # the shadow process acks each failure after the answer is sent
            exposition = client.get("/metrics").text
            if 'kfops_shadow_requests_total{outcome="failed"} 60.0' in exposition:
                break
            time.sleep(0.05)
    assert 'kfops_shadow_requests_total{outcome="failed"} 60.0' in exposition
    assert {r.status_code for _, r in sent} == {200}
    assert {r.json()["model_version"] for _, r in sent} == {"1"}
    events = _events(store)
    shadow = events[events[rollout.ROLE] == "shadow"]
    assert len(shadow) == 60 and set(shadow[rollout.ERROR]) == {"ModelError"}
    assert _cli(store, "rollout", "decide", "churn", "--by", "ci", "--min-requests", "50") == 0
    reg = registry.Registry(store)
    assert reg.champion("churn") == "1"
    assert rollout.pointer(reg, "churn")["history"][-1]["outcome"] == "aborted"


def test_better_challenger_in_shadow_is_promoted_and_recorded(store, tmp_path):
    good, spec, df = factories.classifier()
    _publish(store, tmp_path, _bad(spec, df), good)
    _start(store, "shadow")
    with _serving(store) as (client, application):
        sent = _traffic(client, df, 200)
        _deliver_truth(store, sent, df)
        _wait_for_events(store, 400)  # written every 0.2 s while the server runs
        assert _cli(store, "rollout", "decide", "churn", "--by", "ci", "--min-requests", "150") == 0
        reg = registry.Registry(store)
        assert reg.champion("churn") == "2"
        entry = rollout.pointer(reg, "churn")["history"][-1]
        assert (entry["outcome"], entry["ended_by"], entry["challenger"]) == ("promoted", "ci", "2")
        assert "lies above" in entry["reason"]
        assert entry["evidence"]["comparison"]["agreement"]["rows"] == 200
        # the server follows: the new champion answers, the rollout lane stands down
        for _ in range(100):
            if application.state.plane.manager.current.model.version == "2":
                break
            _traffic(client, df, 1)
        assert _traffic(client, df, 1)[0][1].json()["model_version"] == "2"
        assert application.state.plane.rollout.state is None


def test_worse_challenger_in_canary_is_aborted(store, tmp_path):
    good, spec, df = factories.classifier()
    _publish(store, tmp_path, good, _inverted(spec, df))
    _start(store, "canary", 0.5)
    with _serving(store) as (client, _):
        sent = _traffic(client, df, 400)
    _deliver_truth(store, sent, df)
    assert _cli(store, "rollout", "decide", "churn", "--by", "ci", "--min-requests", "100") == 0
    reg = registry.Registry(store)
    assert reg.champion("churn") == "1"
    entry = rollout.pointer(reg, "churn")["history"][-1]
    assert entry["outcome"] == "aborted" and "lies below" in entry["reason"]
    assert entry["evidence"]["comparison"]["quality_difference"]["paired"] is False


def test_too_little_traffic_waits_and_changes_nothing(store, tmp_path, capsys):
    good, spec, df = factories.classifier()
    _publish(store, tmp_path, _bad(spec, df), good)
    _start(store, "shadow")
    with _serving(store) as (client, _):
        sent = _traffic(client, df, 20)
    _deliver_truth(store, sent, df)
    capsys.readouterr()
    assert _cli(store, "rollout", "decide", "churn", "--by", "ci", "--json") == 0
    out = capsys.readouterr().out
    assert '"decision": "wait"' in out and "20 of 200 challenger requests" in out
    reg = registry.Registry(store)
    assert reg.champion("churn") == "1"
    assert rollout.pointer(reg, "churn")["state"] == "running"
    # promoting against the verdict is one line and exit 2
    assert _cli(store, "rollout", "promote", "churn", "--by", "ci", "--reason", "why") == 2
    assert "the verdict is wait" in capsys.readouterr().err
    assert _cli(store, "rollout", "status", "churn") == 0
    table = capsys.readouterr().out
    assert "challenger        2        20       0" in table and "verdict: wait" in table
    assert _cli(store, "rollout", "abort", "churn", "--by", "ana", "--reason", "not now") == 0
    entry = rollout.pointer(reg, "churn")["history"][-1]
    assert (entry["outcome"], entry["ended_by"], entry["reason"]) == ("aborted", "ana", "not now")
    assert reg.champion("churn") == "1"
    assert _cli(store, "rollout", "abort", "churn", "--by", "ana", "--reason", "again") == 4
    assert "no rollout of 'churn' is running" in capsys.readouterr().err


def test_canary_answers_its_share_sticky_per_key(store, tmp_path):
    good, spec, df = factories.classifier()
    _publish(store, tmp_path, good, _bad(spec, df))
    _start(store, "canary", 0.3)
    keys = [f"user-{i}" for i in range(300)]
    with _serving(store) as (client, _):
        first = {k: _traffic(client, df, 1, {"x-rollout-key": k})[0][1] for k in keys}
        again = {k: _traffic(client, df, 1, {"x-rollout-key": k}, 7)[0][1] for k in keys[:100]}
    version = {k: r.json()["model_version"] for k, r in first.items()}
    assert all(r.headers["x-model-version"] == version[k] for k, r in first.items())
    share = sum(v == "2" for v in version.values()) / len(keys)
    assert 0.2 < share < 0.4  # binomial(300, 0.3): sd 0.026
    assert all(r.json()["model_version"] == version[k] for k, r in again.items())
    assert all((version[k] == "2") == challenger.routed(k, 0.3) for k in keys)
    events = _events(store)
    assert set(events[rollout.ROLE]) == {"champion", "canary"}
    assert len(events) == 400 and (events[rollout.ERROR] == "").all()


def test_challenger_flag_runs_a_canary_without_a_rollout_pointer(store, tmp_path):
    good, spec, df = factories.classifier()
    _publish(store, tmp_path, good, _bad(spec, df))
    with _serving(store, challenger="2", rollout_mode="canary", canary_share=1.0) as (client, _):
        sent = _traffic(client, df, 5)
    assert {r.json()["model_version"] for _, r in sent} == {"2"}
    events = rollout.read_events(
        store, "churn", {"champion": "1", "challenger": "2", "started_at": "1970-01-01T00:00:00Z"}
    )
    assert list(events[rollout.ROLE]) == ["canary"] * 5


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--challenger", "2", "--canary-share", "1.5"], "canary share must be in [0, 1], got 1.5"),
        (["--challenger", "1", "--version", "1"], "the challenger 1 is the pinned version"),
    ],
)
def test_serve_refuses_bad_rollout_flags_in_one_line(store, tmp_path, capsys, flags, message):
    good, spec, df = factories.classifier()
    _publish(store, tmp_path, good, _bad(spec, df))
    argv = ["serve", "--name", "churn", "--store", str(store.root), "--port", "0", *flags]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.strip() == f"kfops: error: {message}"
