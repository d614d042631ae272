"""Serving fixtures: fitted models, and real uvicorn servers on 127.0.0.1 ephemeral ports."""

import dataclasses

import httpx
import pytest

from kfops.serving import app, model, server, settings
from kfops.store import local
from tests.kfops.serving import factories


@dataclasses.dataclass
class Running:
    """A live server: its URL, an httpx client, the model source and the log store behind it."""

    url: str
    client: httpx.Client
    source: model.MemorySource
    store: local.LocalStore
    app: object
    stop: object = None


@pytest.fixture(scope="module")
def clf():
    return factories.classifier()


@pytest.fixture(scope="module")
def reg():
    return factories.regressor()


@pytest.fixture
def serve(tmp_path):
    """Factory: serve(pipeline, spec, name=..., **config) -> Running; stopped at test end."""
    stack = []

    def start(pipeline, spec, name="churn", register_as="1", **overrides):
        source = model.MemorySource()
        source.add(name, pipeline, spec, register_as)
        store = local.LocalStore(tmp_path / f"store-{len(stack)}")
        cfg = settings.ServeConfig(
            name=name, **{"poll_seconds": 0, "log_flush_seconds": 0.2, **overrides}
        )
        application = app.build_app(cfg, source, store)
        ctx = server.running(application)
        url = ctx.__enter__()
        client = httpx.Client(base_url=url, timeout=30)
        stopped = []

        def stop():
            """Graceful stop (lifespan shutdown flushes the inference log); idempotent."""
            if not stopped:
                stopped.append(True)
                client.close()
                ctx.__exit__(None, None, None)

        stack.append(stop)
        return Running(url, client, source, store, application, stop)

    yield start
    for stop in reversed(stack):
        stop()


@pytest.fixture(scope="module")
def clf_server(clf, tmp_path_factory):
    """One classifier server shared by the read-only protocol and bad-request tests of a module."""
    pipeline, spec, _ = clf
    source = model.MemorySource()
    source.add("churn", pipeline, spec, "1")
    cfg = settings.ServeConfig(
        name="churn", poll_seconds=0, max_batch_rows=500, max_body_bytes=200_000
    )
    application = app.build_app(cfg, source, None)
    with server.running(application) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield Running(url, client, source, None, application)
