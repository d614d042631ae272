"""Model updates without downtime: champion polling and the admin endpoint, under load."""

import threading
import time
import traceback

import httpx
import numpy as np
import pandas as pd
import pytest

from kfops import registry
from kfops.serving import app, model, server, settings
from kfops.store import local
from tests.kfops.serving import factories


def _load(url, body, stop, results, failures):
    """Posts until stopped; records (status, version, probabilities), and any exception at all."""
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                r = client.post("/v1/models/churn:predict", json=body)
                answer = r.json()
                results.append(
                    (r.status_code, answer.get("model_version"), answer.get("probabilities"))
                )
    except Exception as e:  # noqa: BLE001 (the test asserts there was none, with its traceback)
        failures.append("".join(traceback.format_exception(e)))


def _versions(kind: str):
    """Two fitted versions of one model kind with the same schema: (v1, v2, spec, frame)."""
    if kind == "linear":
        (first, spec, df), second = factories.classifier(), factories.classifier(c=0.01)[0]
    else:
        (first, spec, df), second = factories.trees(kind), factories.trees(kind, seed=1)[0]
    return first, second, spec, df


@pytest.mark.parametrize("kind", ["linear", "hist_gradient_boosting", "random_forest"])
def test_hot_swap_under_load_picks_up_new_champion_with_zero_failures(tmp_path, kind):
    """Inline (linear) and micro-batched (trees) models: four clients keep posting while the
    champion moves; every answer is a 200 from v1 or v2 and equals that version's probabilities."""
    store = local.LocalStore(tmp_path / "store")
    reg = registry.Registry(store)
    first, second, spec, df = _versions(kind)
    factories.publish(reg, "churn", first, spec, tmp_path)
    cfg = settings.ServeConfig(name="churn", poll_seconds=0.1, log_sample_rate=0)
    application = app.build_app(cfg, model.RegistrySource(reg), store)
    rows = factories.instances(df, 16, 40)
    body = {"instances": rows, "parameters": {"probabilities": True}}
    frame = pd.DataFrame(rows, columns=spec.feature_names)
    expected = {"1": first.predict_proba(frame), "2": second.predict_proba(frame)}
    assert not np.allclose(expected["1"], expected["2"]), "the versions must answer differently"
    stop, per_thread, failures = threading.Event(), [[] for _ in range(4)], []
    with server.running(application) as url:
        threads = [
            threading.Thread(target=_load, args=(url, body, stop, r, failures)) for r in per_thread
        ]
        for t in threads:
            t.start()
        time.sleep(0.5)
        factories.publish(reg, "churn", second, spec, tmp_path)
        deadline = time.monotonic() + 15
        while (
            application.state.plane.manager.current.model.version != "2"
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    results = [r for rs in per_thread for r in rs]
    assert {status for status, _, _ in results} == {200}
    assert {version for _, version, _ in results} == {"1", "2"}
    for _, version, proba in results:
        np.testing.assert_allclose(proba, expected[version], rtol=1e-9)
    for rs in per_thread:  # each client sees 1 then 2, never back
        versions = [v for _, v, _ in rs]
        assert versions == sorted(versions) and versions[-1] == "2"


def test_admin_load_swaps_to_a_given_version(serve, clf):
    srv = serve(*clf[:2])
    srv.source.add("churn", factories.classifier(c=0.1)[0], clf[1], "2", promote=False)
    r = srv.client.post("/v2/repository/models/churn/load", json={"parameters": {"version": "2"}})
    assert r.json() == {"name": "churn", "version": "2", "loaded": True}
    assert srv.client.get("/v2/models/churn").json()["versions"] == ["2"]


def test_admin_load_without_body_loads_the_champion(serve, clf):
    srv = serve(*clf[:2])
    srv.source.add("churn", clf[0], clf[1], "5")
    assert srv.client.post("/v2/repository/models/churn/load").json()["version"] == "5"


def test_admin_load_of_broken_version_keeps_serving_the_old_one(serve, clf):
    srv = serve(*clf[:2])
    reg_pipeline, _, _ = factories.regressor()  # fitted fine, but its outputs do not fit...
    broken = factories.classifier()[1]
    columns = tuple(c for c in broken.columns if c.name != "plan")  # ...a schema lacking 'plan'
    srv.source.add(
        "churn", reg_pipeline, type(broken)(columns, broken.label, broken.task), "2", promote=False
    )
    r = srv.client.post("/v2/repository/models/churn/load", json={"parameters": {"version": "2"}})
    assert r.status_code == 500 and "warm-up" in r.json()["error"]
    ok = srv.client.post(
        "/v1/models/churn:predict", json={"instances": factories.instances(clf[2], 1)}
    )
    assert ok.status_code == 200 and ok.json()["model_version"] == "1"


def test_admin_load_of_unknown_version_answers_404(serve, clf):
    srv = serve(*clf[:2])
    r = srv.client.post("/v2/repository/models/churn/load", json={"parameters": {"version": "9"}})
    assert r.status_code == 404 and "'9'" in r.json()["error"]


def test_admin_endpoint_absent_when_disabled(serve, clf):
    srv = serve(*clf[:2], admin=False)
    assert srv.client.post("/v2/repository/models/churn/load").status_code == 404


def test_pinned_version_ignores_champion_changes(serve, clf):
    srv = serve(*clf[:2], version="1", poll_seconds=0.05)
    srv.source.add("churn", clf[0], clf[1], "2")
    time.sleep(0.3)
    assert srv.client.get("/v2/models/churn").json()["versions"] == ["1"]
