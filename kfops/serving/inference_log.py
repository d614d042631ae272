"""Inference logging off the request path: sampled rows, a bounded buffer, batched Parquet files.

A request that is sampled hands its already-validated column arrays to `submit`, which only appends
to a list under a lock (or drops and counts when the buffer is full: requests never wait on the
store). A background thread turns the buffer into one Parquet file per flush and writes it to the
store under `logs/<model>/<YYYY-MM-DD>/<HHMMSS>-<uuid>.parquet` (kfops.logschema). `close()`
writes everything still buffered, which is what SIGTERM relies on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from kfops import errors, logschema
from kfops.serving import model

log = logging.getLogger("kfops.serving")


@dataclasses.dataclass(frozen=True)
class _Chunk:
    arrays: dict[str, np.ndarray]
    predict: np.ndarray
    proba: np.ndarray | None
    version: str
    request_id: str
    timestamp_ns: int
    passthrough: Mapping[str, list] = dataclasses.field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.predict)


class InferenceLogger:
    """Buffers sampled requests and writes them as Parquet files from one background thread."""

    def __init__(
        self,
        store,
        model_name: str,
        sample_rate: float,
        *,
        queue_rows: int = 200_000,
        flush_rows: int = 10_000,
        flush_seconds: float = 5.0,
        seed: int | None = None,
        on_rows: Callable[[str, int], None] | None = None,
    ):
        """Sets up the logger; `start()` launches the writer.

        Args:
            store: a kfops.store.Store to write to.
            model_name: the `<model>` part of the key.
            sample_rate: fraction of requests logged (each request in or out whole).
            queue_rows: buffer bound; a request that would exceed it is dropped and counted.
            flush_rows: write a file as soon as this many rows are buffered...
            flush_seconds: ...or when this much time has passed with rows buffered.
            seed: seeds the sampler, for reproducible tests.
            on_rows: callback(outcome, n) with outcome queued/written/dropped (metrics hook).
        """
        self.store, self.model_name, self.sample_rate = store, model_name, sample_rate
        self.queue_rows, self.flush_rows, self.flush_seconds = queue_rows, flush_rows, flush_seconds
        self._on_rows = on_rows or (lambda outcome, n: None)
        self._rng = random.Random(seed)
        self._cond = threading.Condition()
        self._chunks: list[_Chunk] = []
        self._queued = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="kfops-inference-log", daemon=True)
        self.dropped = self.written = self.files = 0

    def sampled(self) -> bool:
        """Decides whether the next request is logged."""
        return self.sample_rate >= 1.0 or (
            self.sample_rate > 0.0 and self._rng.random() < self.sample_rate
        )

    def submit(
        self,
        arrays,
        prediction: model.Prediction,
        served: model.ServedModel,
        request_id: str,
        timestamp_ns: int,
        passthrough: Mapping[str, list] | None = None,
    ) -> bool:
        """Buffers one request's rows; never blocks on the store. Returns False when dropped.

        `passthrough`: fields the server passes through (a record id), logged beside the inputs.
        """
        # the last class's probability, whichever class is positive: the monitor scores it
        # against the last class (kfops/monitor/evidently_run.py, pos_label=classes[-1])
        proba = prediction.proba[:, -1] if prediction.proba is not None else None
        chunk = _Chunk(
            arrays,
            prediction.predict,
            proba,
            served.version,
            request_id,
            timestamp_ns,
            dict(passthrough or {}),
        )
        return self._enqueue(chunk)

    def _enqueue(self, chunk) -> bool:
        """Appends a chunk (anything with `.rows`) unless the buffer is full; never blocks."""
        with self._cond:
            if self._closed or self._queued + chunk.rows > self.queue_rows:
                self.dropped += chunk.rows
                accepted = False
            else:
                self._chunks.append(chunk)
                self._queued += chunk.rows
                accepted = True
                if self._queued >= self.flush_rows:
                    self._cond.notify()
        self._on_rows("queued" if accepted else "dropped", chunk.rows)
        return accepted

    def start(self) -> InferenceLogger:
        """Starts the writer thread."""
        self._thread.start()
        return self

    def close(self, timeout: float = 30.0) -> None:
        """Stops accepting rows, writes everything buffered, and waits for the writer."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        else:
            self._write(self._take())

    def _run(self) -> None:
        while True:
            with self._cond:
                deadline = time.monotonic() + self.flush_seconds
                while not self._closed and self._queued < self.flush_rows:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 and self._queued:
                        break
                    self._cond.wait(remaining if remaining > 0 else self.flush_seconds)
                closing = self._closed
            self._write(self._take())
            if closing:
                return

    def _take(self) -> list[_Chunk]:
        with self._cond:
            chunks, self._chunks, self._queued = self._chunks, [], 0
        return chunks

    def _write(self, chunks: list[_Chunk]) -> None:
        if not chunks:
            return
        rows = sum(c.rows for c in chunks)
        key = self._key()
        try:
            self.store.put_bytes(key, self._encode(chunks))
        except (errors.KfopsError, OSError) as e:
            with self._cond:
                self.dropped += rows
            self._on_rows("dropped", rows)
            log.error(
                "inference log write failed", extra={"key": key, "rows": rows, "error": str(e)}
            )
            return
        self.written += rows
        self.files += 1
        self._on_rows("written", rows)

    def _key(self) -> str:
        """Where the next file goes (a subclass logging something else overrides it)."""
        return _key(self.model_name)

    def _encode(self, chunks: list) -> bytes:
        """The chunks as one Parquet file (a subclass logging something else overrides it)."""
        return _parquet(chunks)


def _key(model_name: str) -> str:
    now = dt.datetime.now(dt.UTC)
    return (
        f"{logschema.log_prefix(model_name)}{now:%Y-%m-%d}/{now:%H%M%S}-{uuid.uuid4().hex}.parquet"
    )


def _passthrough(chunks: list[_Chunk]) -> dict[str, pa.Array]:
    """Passed-through fields as text columns (null where a request lacked one).

    Text, since clients' ids mix numbers and strings across requests and a Parquet column has
    one type; a number comes back as its JSON text (7 -> "7").
    """
    names = sorted({n for c in chunks for n in c.passthrough})
    out = {}
    for name in names:
        values: list = []
        for c in chunks:
            got = c.passthrough.get(name) or [None] * c.rows
            values.extend(None if v is None else _text(v) for v in got)
        out[name] = pa.array(values, type=pa.string())
    return out


def _text(value) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _parquet(chunks: list[_Chunk]) -> bytes:
    """Concatenates chunks column by column (numpy, not pandas.concat) into one Parquet file."""
    counts = [c.rows for c in chunks]
    columns = {
        name: pa.array(np.concatenate([c.arrays[name] for c in chunks]), from_pandas=True)
        for name in chunks[0].arrays
    }
    columns[logschema.REQUEST_ID] = pa.array(np.repeat([c.request_id for c in chunks], counts))
    stamps = np.repeat(np.array([c.timestamp_ns for c in chunks], dtype="datetime64[ns]"), counts)
    columns[logschema.TIMESTAMP] = pa.array(stamps, type=pa.timestamp("ns", tz="UTC"))
    columns[logschema.MODEL_VERSION] = pa.array(np.repeat([c.version for c in chunks], counts))
    columns[logschema.PREDICTION] = pa.array(
        np.concatenate([c.predict for c in chunks]), from_pandas=True
    )
    if all(c.proba is not None for c in chunks):
        columns[logschema.PROBA] = pa.array(np.concatenate([c.proba for c in chunks]))
    columns.update(_passthrough(chunks))
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink, compression="snappy")
    return sink.getvalue()
