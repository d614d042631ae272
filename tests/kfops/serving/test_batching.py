"""Micro-batching: concurrent requests share a predict call, and each gets exactly its own rows."""

import asyncio
import concurrent.futures
import dataclasses

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from kfops.serving import batching, model, validation
from kfops.serving import errors as serr
from tests.kfops.serving import factories

REFUSED_TENURE = 13


def _refuse_tenure_13(frame):
    """A model step that fails on one value the schema allows: the model's own refusal."""
    if (frame["tenure"] == REFUSED_TENURE).any():
        raise ValueError(f"tenure {REFUSED_TENURE} is not supported")
    return frame


def _validated(spec, rows):
    cols = {c.name: [r[c.name] for r in rows] for c in spec.features}
    return validation.Validator(spec).validate(cols, len(rows))


def _run(batcher, served, requests, want_proba=True, arrival_first=False):
    """Submits every request in one event-loop tick; returns outcomes (prediction or exception)."""

    async def main():
        arrival = batcher.arrival() if arrival_first else None
        tasks = [asyncio.ensure_future(batcher.predict(served, v, want_proba)) for v in requests]
        await asyncio.sleep(0)
        if arrival is not None:
            arrival.close()
        out = await asyncio.gather(*tasks, return_exceptions=True)
        batcher.close()
        return out

    return asyncio.run(main())


def _recorder():
    calls = []
    return calls, lambda requests, rows: calls.append((requests, rows))


def test_batcher_joins_requests_queued_while_worker_busy(clf):
    pipeline, spec, df = clf
    served = model.ServedModel("churn", "1", pipeline, spec)
    calls, on_batch = _recorder()
    rows = [factories.instances(df, n, start=10 * i) for i, n in enumerate((1, 2, 1, 3, 1))]
    out = _run(
        batching.MicroBatcher(0.05, 64, on_batch), served, [_validated(spec, r) for r in rows]
    )
    assert calls == [(1, 1), (4, 7)]
    for got, r in zip(out, rows, strict=True):
        frame = _validated(spec, r).frame
        np.testing.assert_array_equal(got.predict, pipeline.predict(frame))
        np.testing.assert_allclose(got.proba, pipeline.predict_proba(frame), rtol=1e-12)


def test_batcher_waits_for_requests_under_way_before_predicting(clf):
    pipeline, spec, df = clf
    served = model.ServedModel("churn", "1", pipeline, spec)
    calls, on_batch = _recorder()
    requests = [_validated(spec, factories.instances(df, 1, start=i)) for i in range(3)]
    _run(batching.MicroBatcher(10.0, 64, on_batch), served, requests, arrival_first=True)
    assert calls == [(3, 3)]


def test_batcher_window_zero_predicts_each_request_alone(clf):
    pipeline, spec, df = clf
    served = model.ServedModel("churn", "1", pipeline, spec)
    calls, on_batch = _recorder()
    requests = [_validated(spec, factories.instances(df, 2, start=i)) for i in range(3)]
    _run(batching.MicroBatcher(0.0, 64, on_batch), served, requests)
    assert calls == [(1, 2)] * 3


def test_batcher_keeps_batches_within_max_rows(clf):
    pipeline, spec, df = clf
    served = model.ServedModel("churn", "1", pipeline, spec)
    calls, on_batch = _recorder()
    requests = [_validated(spec, factories.instances(df, 3, start=i)) for i in range(5)]
    _run(batching.MicroBatcher(0.05, 7, on_batch), served, requests)
    assert calls == [(1, 3), (2, 6), (2, 6)]


def test_batcher_never_mixes_column_dtypes(clf):
    pipeline, spec, df = clf
    nullable = [
        dataclasses.replace(c, nullable=True) if c.name == "tenure" else c for c in spec.columns
    ]
    spec = dataclasses.replace(spec, columns=tuple(nullable))
    served = model.ServedModel("churn", "1", pipeline, spec)
    calls, on_batch = _recorder()
    row = factories.instances(df, 1)[0]
    with_null = _validated(spec, [{**row, "tenure": None}])
    plain = _validated(spec, [row])
    assert (with_null.arrays["tenure"].dtype, plain.arrays["tenure"].dtype) == (float, np.int64)
    _run(batching.MicroBatcher(0.05, 64, on_batch), served, [plain, plain, with_null, plain])
    assert calls == [(1, 1), (2, 2), (1, 1)]


def test_batcher_isolates_a_request_the_model_refuses(clf):
    pipeline, spec, df = clf
    refusing = Pipeline([("guard", FunctionTransformer(_refuse_tenure_13)), ("model", pipeline)])
    served = model.ServedModel("churn", "1", refusing, spec)
    good = factories.instances(df, 2)
    bad = [{**good[0], "tenure": REFUSED_TENURE}]
    requests = [_validated(spec, r) for r in (good, good, bad, good[1:])]
    out = _run(batching.MicroBatcher(0.05, 64), served, requests)
    assert isinstance(out[2], serr.ModelRejectedInput) and "13" in str(out[2])
    for got, r in zip([out[0], out[1], out[3]], [good, good, good[1:]], strict=True):
        np.testing.assert_array_equal(got.predict, pipeline.predict(_validated(spec, r).frame))


def _client_rows(df, worker, i):
    n = 1 + (worker + i) % 3
    return factories.instances(df, n, start=(worker * 37 + i * 5) % (len(df) - 3))


def _v1_worker(url, df, worker, n_requests):
    import httpx

    out = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(n_requests):
            rows = _client_rows(df, worker, i)
            body = {"instances": rows, "parameters": {"probabilities": True}}
            r = client.post("/v1/models/churn:predict", json=body)
            assert r.status_code == 200, r.text
            out.append((rows, r.json()))
    return out


@pytest.mark.parametrize(
    ("window_ms", "fast_path"), [(2.0, False), (0.0, False), (2.0, True)], ids=str
)
def test_concurrent_clients_each_get_exactly_their_own_predictions(
    serve, clf, window_ms, fast_path
):
    pipeline, spec, df = clf
    srv = serve(pipeline, spec, log_sample_rate=0, batch_window_ms=window_ms, fast_path=fast_path)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(_v1_worker, srv.url, df, w, 25) for w in range(8)]
        answers = [a for f in futures for a in f.result(timeout=120)]
    assert len(answers) == 200
    for rows, body in answers:
        frame = _validated(spec, rows).frame
        assert body["predictions"] == pipeline.predict(frame).tolist()
        np.testing.assert_allclose(body["probabilities"], pipeline.predict_proba(frame), rtol=1e-9)
    text = srv.client.get("/metrics").text
    calls = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("kfops_predict_call_requests_")
    }
    if fast_path:  # small requests to a compiled model are answered inline, never batched
        assert calls["kfops_predict_call_requests_sum"] == 0
        return
    joined = calls["kfops_predict_call_requests_sum"] - calls["kfops_predict_call_requests_count"]
    assert calls["kfops_predict_call_requests_sum"] == 200
    assert (joined > 0) == (window_ms > 0)


def test_the_prediction_thread_runs_openmp_with_one_thread():
    """sklearn's OpenMP predict waits for sleeping threads under load (seconds, measured): the
    batcher's thread predicts with one."""
    import threadpoolctl  # noqa: PLC0415

    batcher = batching.MicroBatcher(0.002, 64)
    try:
        info = batcher._executor.submit(threadpoolctl.threadpool_info).result()
    finally:
        batcher.close()
    openmp = [lib for lib in info if lib["user_api"] == "openmp"]
    assert openmp, "sklearn's OpenMP runtime is loaded"
    assert all(lib["num_threads"] == 1 for lib in openmp), openmp


def test_a_started_server_hands_the_gil_to_the_event_loop_within_half_a_millisecond(clf, serve):
    """A busy background thread (the inference log encoding a flush) would otherwise keep the
    event loop waiting up to CPython's default 5 ms per wake-up."""
    import sys  # noqa: PLC0415

    from kfops.serving import app  # noqa: PLC0415

    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        pipeline, spec, _ = clf
        serve(pipeline, spec)
        assert sys.getswitchinterval() == app.SWITCH_INTERVAL == 0.0005
    finally:
        sys.setswitchinterval(before)
