"""The server's log hand-off batches requests of any size up to a datagram: every row arrives once,
in the order the requests came, with its values unchanged (numbers travel as raw bytes)."""

import asyncio
import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from kfops import logschema
from kfops.serving import inference_log, model
from kfops.store import local

# 100-row requests share datagrams, one of 900 rows is sliced, single rows and 300 rows between
SIZES = [100] * 9 + [1, 900, 300, 1, 1] + [100] * 6 + [0, 37]


def _request(start: int, n: int):
    idx = np.arange(start, start + n)
    charges = idx + 0.25
    charges[idx % 7 == 3] = np.nan
    plan = np.array([None if i % 11 == 5 else f"plan-{i}" for i in idx], dtype=object)
    arrays = {
        "tenure": idx.astype(np.int64),
        "small": (idx % 120).astype(np.int8),
        "charges": charges,
        "ratio": (idx / 3).astype(np.float32),
        "plan": plan,
        "promo": idx % 2 == 0,
    }
    proba = np.column_stack([1 - idx / 1e4, idx / 1e4])
    return arrays, model.Prediction(idx % 3, proba)


def test_mid_size_requests_batched_keep_every_row_in_order(tmp_path, clf):
    served = model.ServedModel("churn", "1", clf[0], clf[1])
    store = local.LocalStore(tmp_path)
    logger = inference_log.ProcessLogger(store, "churn", 1.0, flush_seconds=3600).start()
    sent, datagrams = [], []
    send = logger._send

    def counted(data, rows, queued=True):
        datagrams.append(rows)
        return send(data, rows, queued)

    logger._send = counted

    async def burst():
        start = 0
        for i, n in enumerate(SIZES):
            arrays, prediction = _request(start, n)
            ids = {"record": [f"rec-{start + k}" for k in range(n)]}
            assert logger.submit(arrays, prediction, served, f"req-{i}", 10**18 + i, ids)
            sent.append((arrays, prediction, [f"req-{i}"] * n, ids["record"]))
            start += n
        logger.close()

    asyncio.run(burst())
    keys = list(store.list(logschema.log_prefix("churn")))
    assert len(keys) == 1  # close writes what it received as one file: its row order is the order
    got = pq.read_table(io.BytesIO(store.get_bytes(keys[0]))).to_pandas()
    total = sum(SIZES)
    assert len(got) == total and logger.written == total and logger.dropped == 0
    # 100-row requests (~16 KB here) go 3 to a datagram; the 900-row one alone, in 3 slices
    assert len(datagrams) <= 12 and 900 not in datagrams, datagrams
    for name in ("tenure", "small", "charges", "ratio", "promo"):
        want = np.concatenate([a[name] for a, *_ in sent])
        assert got[name].dtype == want.dtype, name
        np.testing.assert_array_equal(got[name].to_numpy(), want, err_msg=name)
    want_plan = [v for a, *_ in sent for v in a["plan"].tolist()]
    assert [None if pd.isna(v) else v for v in got["plan"]] == want_plan
    np.testing.assert_array_equal(
        got[logschema.PREDICTION].to_numpy(), np.concatenate([p.predict for _, p, *_ in sent])
    )
    np.testing.assert_array_equal(
        got[logschema.PROBA].to_numpy(), np.concatenate([p.proba[:, -1] for _, p, *_ in sent])
    )
    assert got[logschema.REQUEST_ID].tolist() == [r for *_, ids, _ in sent for r in ids]
    assert got["record"].tolist() == [r for *_, rec in sent for r in rec]


def test_a_request_is_sent_in_slices_only_above_the_datagram_budget():
    arrays, _ = _request(0, 1)
    width = inference_log._width(arrays)
    below = inference_log._SLICE_BYTES // width
    assert inference_log._slices(arrays, below) == [(0, below)]
    assert len(inference_log._slices(arrays, below + 1)) == 2


def test_a_batch_longer_than_the_socket_takes_is_halved_not_dropped(tmp_path, clf):
    """Objects longer than the estimate (64 bytes): the pickled batch is split until it fits."""
    served = model.ServedModel("churn", "1", clf[0], clf[1])
    store = local.LocalStore(tmp_path)
    logger = inference_log.ProcessLogger(store, "churn", 1.0, flush_seconds=3600).start()
    logger._max_datagram = 64 * 1024  # as a kernel with a small net.core.wmem_max allows
    sizes, send = [], logger._send

    def measured(data, rows, queued=True):
        sizes.append(len(data))
        return send(data, rows, queued)

    logger._send = measured
    notes = [f"{i:05d}" + "x" * 1000 for i in range(20 * 30)]  # ~1 KB each, estimated at 64

    async def burst():
        for i in range(20):
            arrays = {"note": np.array(notes[i * 30 : (i + 1) * 30], dtype=object)}
            prediction = model.Prediction(np.zeros(30, dtype=np.int64), None)
            assert logger.submit(arrays, prediction, served, f"req-{i}", i)
        logger.close()

    asyncio.run(burst())
    got = pd.concat(
        pq.read_table(io.BytesIO(store.get_bytes(k))).to_pandas()
        for k in store.list(logschema.log_prefix("churn"))
    )
    assert got["note"].tolist() == notes and logger.dropped == 0
    assert len(sizes) > 1 and max(sizes) <= 64 * 1024, sizes
