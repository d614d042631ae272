"""Inference logs: Parquet files matching the requests, bounded memory, requests never blocked."""

import asyncio
import concurrent.futures
import io
import multiprocessing
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from kfops import logschema
from kfops.serving import app, inference_log, model
from kfops.store import local
from tests.kfops.serving import factories


def _read_logs(store, name="churn") -> pd.DataFrame:
    keys = list(store.list(logschema.log_prefix(name)))
    frames = [pq.read_table(io.BytesIO(store.get_bytes(k))).to_pandas() for k in keys]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def test_logs_written_under_load_match_requests(serve, clf):
    pipeline, spec, df = clf
    srv = serve(pipeline, spec, log_flush_rows=50)
    sizes = [1, 3, 7] * 10

    def send(i):
        rows = factories.instances(df, sizes[i], start=i)
        r = srv.client.post(
            "/v1/models/churn:predict", json={"instances": rows}, headers={"x-request-id": f"r{i}"}
        )
        return f"r{i}", rows, r.json()["predictions"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        sent = list(pool.map(send, range(len(sizes))))
    srv.stop()
    logs = _read_logs(srv.store)
    assert len(logs) == sum(sizes)
    assert str(logs[logschema.TIMESTAMP].dtype) == "datetime64[ns, UTC]"
    assert set(logs[logschema.MODEL_VERSION]) == {"1"}
    for rid, rows, predictions in sent:
        got = logs[logs[logschema.REQUEST_ID] == rid]
        assert got[spec.feature_names].to_dict("records") == rows
        assert got[logschema.PREDICTION].tolist() == predictions
        assert got[logschema.PROBA].between(0, 1).all()


def test_logs_sample_rate_zero_writes_nothing(serve, clf):
    srv = serve(*clf[:2], log_sample_rate=0.0)
    srv.client.post("/v1/models/churn:predict", json={"instances": factories.instances(clf[2], 2)})
    srv.stop()
    assert list(srv.store.list("logs/")) == []


class SlowStore(local.LocalStore):
    """A real local store whose writes take `delay` seconds, like an overloaded object store."""

    def __init__(self, root, delay):
        super().__init__(root)
        self.delay = delay

    def put_bytes(self, key, data):
        time.sleep(self.delay)
        super().put_bytes(key, data)


def _submit_rows(logger, served, n):
    arrays = {
        "tenure": np.array([1]),
        "charges": np.array([50.0]),
        "plan": np.array(["pro"], dtype=object),
        "promo": np.array([True]),
    }
    pred = model.Prediction(np.array([1]), np.array([[0.2, 0.8]]))
    return [logger.submit(arrays, pred, served, f"r{i}", time.time_ns()) for i in range(n)]


def test_logger_drops_and_counts_instead_of_blocking_when_store_is_slow(tmp_path, clf):
    served = model.ServedModel("churn", "1", clf[0], clf[1])
    logger = inference_log.InferenceLogger(
        SlowStore(tmp_path, 0.5), "churn", 1.0, queue_rows=20, flush_rows=10, flush_seconds=0.05
    ).start()
    start = time.perf_counter()
    accepted = _submit_rows(logger, served, 300)
    elapsed = time.perf_counter() - start
    logger.close(timeout=10)
    assert elapsed < 0.4, f"submit blocked for {elapsed:.2f}s"
    assert logger.dropped > 0 and sum(accepted) + logger.dropped == 300
    assert logger.written == sum(accepted)


def test_logger_close_flushes_every_buffered_row(tmp_path, clf):
    served = model.ServedModel("churn", "1", clf[0], clf[1])
    store = local.LocalStore(tmp_path)
    logger = inference_log.InferenceLogger(
        store, "churn", 1.0, flush_rows=10_000, flush_seconds=3600
    ).start()
    _submit_rows(logger, served, 37)
    assert list(store.list("logs/")) == []
    logger.close()
    assert len(_read_logs(store)) == 37 and logger.dropped == 0


def test_a_writer_still_busy_at_the_close_deadline_is_said_in_the_log(tmp_path, clf, caplog):
    served = model.ServedModel("churn", "1", clf[0], clf[1])
    logger = inference_log.InferenceLogger(
        SlowStore(tmp_path, 2.0), "churn", 1.0, flush_rows=1, flush_seconds=3600
    ).start()
    _submit_rows(logger, served, 1)
    deadline = time.monotonic() + 30
    while logger._queued:  # until the writer took the row: it is then inside the 2 s write
        assert time.monotonic() < deadline, "the writer never took the row"
        time.sleep(0.01)
    _submit_rows(logger, served, 3)
    logger.close(timeout=0.2)
    [record] = [r for r in caplog.records if r.msg == "log writer did not finish in time"]
    assert (record.rows_queued, record.rows_written) == (3, 0)


def test_logger_sample_rate_logs_about_that_fraction(tmp_path):
    logger = inference_log.InferenceLogger(local.LocalStore(tmp_path), "m", 0.25, seed=7)
    share = sum(logger.sampled() for _ in range(4000)) / 4000
    assert 0.22 < share < 0.28


# ---- the server's logger: a child process (issue #16: no encoding on the server's GIL) ----


def _process_logger(store, **kw) -> inference_log.ProcessLogger:
    return inference_log.ProcessLogger(store, "churn", 1.0, **kw).start()


def test_process_logger_writes_every_row_after_sigterm_to_its_child(tmp_path, clf):
    """A pod's or terminal's signal reaches the child too; it must still write all it received."""
    served = model.ServedModel("churn", "1", clf[0], clf[1])
    store = local.LocalStore(tmp_path)
    logger = _process_logger(store, flush_rows=10_000, flush_seconds=3600)
    accepted = _submit_rows(logger, served, 137)
    os.kill(logger.pid, signal.SIGTERM)
    os.kill(logger.pid, signal.SIGINT)
    time.sleep(0.3)
    logger.close()
    logs = _read_logs(store)
    assert all(accepted) and len(logs) == 137
    assert sorted(logs[logschema.REQUEST_ID]) == sorted(f"r{i}" for i in range(137))
    assert logger.written == 137 and logger.dropped == 0 and logger.files == 1


def test_process_logger_child_counts_what_its_slow_store_drops(tmp_path, clf):
    served = model.ServedModel("churn", "1", clf[0], clf[1])
    logger = _process_logger(
        SlowStore(tmp_path, 0.5), queue_rows=20, flush_rows=10, flush_seconds=0.05
    )
    start = time.perf_counter()
    _submit_rows(logger, served, 300)
    elapsed = time.perf_counter() - start
    logger.close(timeout=10)
    assert elapsed < 0.4, f"submit blocked for {elapsed:.2f}s"
    assert logger.dropped > 0 and logger.written > 0
    assert logger.written + logger.dropped == 300
    assert len(_read_logs(SlowStore(tmp_path, 0))) == logger.written


def test_process_logger_drops_and_counts_when_its_child_is_stopped(tmp_path, clf):
    """A stalled child fills the socket: requests are dropped and counted, never blocked."""
    served = model.ServedModel("churn", "1", clf[0], clf[1])
    store = local.LocalStore(tmp_path)
    logger = _process_logger(store, flush_seconds=3600)
    os.kill(logger.pid, signal.SIGSTOP)
    try:
        start = time.perf_counter()
        accepted = _submit_rows(logger, served, 20_000)
        elapsed = time.perf_counter() - start
    finally:
        os.kill(logger.pid, signal.SIGCONT)
    logger.close()
    assert not all(accepted) and logger.dropped == accepted.count(False)
    assert elapsed < 10, f"submit blocked for {elapsed:.2f}s"
    assert len(_read_logs(store)) == logger.written == accepted.count(True)


def test_process_logger_counts_drops_and_never_raises_when_its_child_died(tmp_path, clf, caplog):
    served = model.ServedModel("churn", "1", clf[0], clf[1])
    logger = _process_logger(local.LocalStore(tmp_path))
    os.kill(logger.pid, signal.SIGKILL)
    logger._child.wait(10)
    accepted = _submit_rows(logger, served, 50)
    logger.close()
    assert accepted == [False] * 50 and logger.dropped == 50
    assert [r.msg for r in caplog.records].count("inference log writer is gone") == 1


def test_process_logger_batches_on_the_event_loop_and_close_sends_the_rest(tmp_path, clf):
    """On a loop small requests wait (<= 20 ms) to share a datagram; close must not lose them."""
    served = model.ServedModel("churn", "1", clf[0], clf[1])
    store = local.LocalStore(tmp_path)
    logger = _process_logger(store, flush_seconds=3600)

    async def burst():
        accepted = _submit_rows(logger, served, 45)  # one full batch of 32, 13 pending
        logger.close()
        return accepted

    assert all(asyncio.run(burst()))
    assert len(_read_logs(store)) == 45 and logger.written == 45 and logger.dropped == 0


def test_process_logger_sends_a_partial_batch_without_waiting_for_more_requests(tmp_path, clf):
    served = model.ServedModel("churn", "1", clf[0], clf[1])
    logger = _process_logger(local.LocalStore(tmp_path), flush_seconds=0.05)

    async def trickle():
        _submit_rows(logger, served, 3)
        # then no more traffic: the rows must still reach a file. The wait is no claim: the
        # niced child's first Parquet write took over 5 s on a loaded 2-core machine.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            if logger.written:
                return logger.written
        return 0

    written = asyncio.run(trickle())
    logger.close()
    assert written == 3


def test_process_logger_child_runs_below_the_servers_cpu_priority(tmp_path):
    logger = _process_logger(local.LocalStore(tmp_path))
    try:
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, logger.pid) == min(ours + 10, 19)
        # Linux keeps a nice value per thread, inherited at creation: the writer's flush thread
        # (started after the nice) has it too. Threads numpy and pyarrow start at import do not.
        tasks = [int(t.name) for t in pathlib.Path(f"/proc/{logger.pid}/task").iterdir()]
        niced = [t for t in tasks if os.getpriority(os.PRIO_PROCESS, t) == min(ours + 10, 19)]
        assert len(niced) >= 2  # the receiving main thread and the flush thread
        # still a normal-class process: an idle-class writer would get nothing under saturation
        assert os.sched_getscheduler(logger.pid) == os.SCHED_OTHER
    finally:
        logger.close()


def test_server_encodes_its_log_in_another_process(serve, clf, monkeypatch):
    """The Parquet encoding must not run on the server's GIL (it stalled the event loop)."""
    encoded_here = []
    real = inference_log._parquet
    monkeypatch.setattr(
        inference_log, "_parquet", lambda chunks: encoded_here.append(1) or real(chunks)
    )
    srv = serve(*clf[:2])
    for i in range(5):
        srv.client.post(
            "/v1/models/churn:predict", json={"instances": factories.instances(clf[2], 2, start=i)}
        )
    logger = srv.app.state.plane.inference_log
    assert logger.pid not in (None, os.getpid())
    assert "kfops-inference-log" not in {t.name for t in threading.enumerate()}
    srv.stop()
    assert len(_read_logs(srv.store)) == 10
    assert encoded_here == []


def test_request_ids_are_unique_within_a_process_across_forks_and_restarts():
    ids = [app.new_request_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids) and all(len(i) == 32 for i in ids)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        forked = pool.apply(_ids, (1000,))
    assert not set(forked) & set(ids + [app.new_request_id() for _ in range(1000)])
    code = "from kfops.serving import app; print(app.new_request_id())"
    fresh = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        for _ in range(2)
    }
    assert len(fresh) == 2


def _ids(n: int) -> list[str]:
    return [app.new_request_id() for _ in range(n)]
