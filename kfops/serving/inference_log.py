"""Inference logging off the request path: sampled rows, a bounded buffer, batched Parquet files.

A request that is sampled hands its already-validated column arrays to `submit`, which only appends
to a list under a lock (or drops and counts when the buffer is full: requests never wait on the
store). A background thread turns the buffer into one Parquet file per flush and writes it to the
store under `logs/<model>/<YYYY-MM-DD>/<HHMMSS>-<uuid>.parquet` (kfops.logschema). `close()`
writes everything still buffered, which is what SIGTERM relies on.

The server runs that writer in a child process (`ProcessLogger`): encoding a flush holds the GIL
for 50-165 ms, and every GIL-releasing call of the event loop (a socket send) then waited for it,
which was the single-row tail under saturation (issue #16, bench/RESULTS.md). The server's side
only pickles each request's columns (numbers as raw bytes, objects as lists), several requests
to a datagram.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import errno
import io
import logging
import os
import pickle
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from multiprocessing import connection as mpc
from typing import TYPE_CHECKING

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from kfops import config, errors, logschema
from kfops.store import base as store_base

if TYPE_CHECKING:  # the log's child process never imports the model stack
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
        """Stops accepting rows, writes everything buffered, and waits for the writer.

        A writer still busy after `timeout` is left (a daemon thread: it ends with the process)
        and said in the log, with the rows it had not yet taken.
        """
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error(
                    "log writer did not finish in time",
                    extra={"model": self.model_name, "log": type(self).__name__,
                           "rows_queued": self._queued, "rows_written": self.written},
                )  # fmt: skip
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


# One datagram per request (or per slice of a large one). AF_UNIX datagrams are all-or-nothing,
# so a full socket (the child behind) drops a whole request, counted, and never a part of one.
_SLICE_BYTES = 64 * 1024
_NICE = 10  # the writer's CPU priority below the server's (`nice`)
_SOCKET_BUFFER = 4 * 1024 * 1024  # the kernel caps it at net.core.wmem_max / rmem_max
_CHILD_CODE = (
    "import sys; from kfops.serving import inference_log as m; m._child_main(*sys.argv[1:])"  # noqa: E501
)
# A request up to _SLICE_BYTES (estimated, as `_width` counts) is batched with others: a
# datagram of at most _BATCH requests or _BATCH_BYTES (estimated; objects are counted at 64
# bytes, so it is ~5x smaller for the make-run model), sent at the latest after _BATCH_SECONDS.
_BATCH, _BATCH_BYTES, _BATCH_SECONDS = 32, 256 * 1024, 0.02
_RAW_KINDS = "biuf"  # dtypes sent as their bytes (native order): one copy, no Python objects


class ProcessLogger(InferenceLogger):
    """An `InferenceLogger` run in a child process, fed one datagram per sampled request.

    Same files, schema, sampling, bound and drain as `InferenceLogger` (the child runs one). The
    server's side costs one pickle of plain lists and one non-blocking send per request: no
    Python thread computes beside the event loop. When the socket is full (the child is
    behind), the request is dropped and counted here; rows the child drops (its buffer bound, a
    failed write) and rows it writes come back over a pipe and are counted here too.

    The child ignores SIGINT and SIGTERM (a terminal or a pod sends them to the whole group): it
    stops when the server closes the socket (`close`, or the server dying), after writing every
    row it received.
    """

    def __init__(
        self,
        store,
        model_name: str,
        sample_rate: float,
        *,
        seed: int | None = None,
        on_rows: Callable[[str, int], None] | None = None,
        **writer,
    ):
        """Arguments as `InferenceLogger`; `start()` launches the child.

        `writer`: queue_rows, flush_rows, flush_seconds of the child's `InferenceLogger`.
        """
        super().__init__(None, model_name, sample_rate, seed=seed, on_rows=on_rows)
        self._settings = {"model_name": model_name, **writer}
        self._store = _portable(store)
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._child = self._reader = None
        self.pid: int | None = None  # the child's, once started
        self._gone = False  # the child died: logged once
        self._pending: list[tuple] = []  # (rows, item) of requests not sent yet (`_enqueue`)
        self._pending_rows = self._pending_bytes = 0
        self._budget = _BATCH_BYTES  # estimated bytes of a batch, within what the socket takes
        self._max_datagram = 0

    def start(self, timeout: float = 60.0) -> ProcessLogger:
        """Starts the child and waits until it can take rows (so none are dropped at startup)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for s, opt in ((ours, socket.SO_SNDBUF), (theirs, socket.SO_RCVBUF)):
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, opt, _SOCKET_BUFFER)
        counts_fd, counts_child = os.pipe()
        # A fresh interpreter, not multiprocessing: its spawn re-runs the caller's __main__ and
        # its fork would copy a threaded, OpenMP-using server.
        self._child = subprocess.Popen(
            [sys.executable, "-c", _CHILD_CODE, str(theirs.fileno()), str(counts_child)],
            stdin=subprocess.PIPE,
            pass_fds=(theirs.fileno(), counts_child),
        )
        theirs.close()
        os.close(counts_child)
        with self._child.stdin as stdin:
            stdin.write(pickle.dumps((self._store, self._settings)))
        counts_in = mpc.Connection(counts_fd, writable=False)
        if not counts_in.poll(timeout) or _recv(counts_in) != ("ready", 0):
            self._child.kill()
            raise errors.StorageError("the inference log's writer process did not start")
        ours.setblocking(False)
        # Linux refuses a datagram above the send buffer (as it reports it) minus 32 bytes
        # (net/unix/af_unix.c unix_dgram_sendmsg); wmem_max caps the buffer we asked for.
        self._max_datagram = ours.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) - 64
        self._budget = min(_BATCH_BYTES, self._max_datagram // 2)
        self._sock, self.pid = ours, self._child.pid
        self._reader = threading.Thread(
            target=self._count, args=(counts_in,), name="kfops-inference-log-counts", daemon=True
        )
        self._reader.start()
        return self

    def _enqueue(self, chunk: _Chunk) -> bool:
        """Hands a request's rows to the child (`submit` builds the chunk); never blocks.

        On the event loop, requests up to `_SLICE_BYTES` are batched: sent every `_BATCH`
        requests, `_BATCH_BYTES` or `_BATCH_SECONDS`, so the child wakes ~100 times a second
        rather than per request (a 100-row request of the make-run model is ~8 KB).
        """
        rows, arrays = chunk.rows, chunk.arrays
        head = (chunk.version, chunk.request_id, chunk.timestamp_ns)
        size = rows * _width(arrays)
        if size <= _SLICE_BYTES:  # the common case, without slicing
            cols = {k: _plain(v) for k, v in arrays.items()}
            item = (cols, _plain(chunk.predict), _plain(chunk.proba), chunk.passthrough, *head)
            return self._add(item, rows, size)
        self._flush_pending()  # rows reach the file in the order they came
        sent = True
        for lo, hi in _slices(arrays, rows):
            cols = {k: _plain(v[lo:hi]) for k, v in arrays.items()}
            item = (
                cols,
                _plain(chunk.predict[lo:hi]),
                _plain(None if chunk.proba is None else chunk.proba[lo:hi]),
                {k: list(v[lo:hi]) for k, v in chunk.passthrough.items()},
                *head,
            )
            sent = self._send(_dumps([item]), hi - lo) and sent
        return sent

    def _add(self, item: tuple, rows: int, size: int) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop (a thread, a test): send it now
            return self._send(_dumps([item]), rows)
        if self._pending_bytes + size > self._budget:  # it would not fit: send those first
            self._flush_pending()
        with self._lock:
            self._pending.append((rows, item))
            self._pending_rows += rows
            self._pending_bytes += size
            first = len(self._pending) == 1
            full = len(self._pending) >= _BATCH or self._pending_bytes >= self._budget
        self._on_rows("queued", rows)  # now, for /metrics; a batch the child cannot take is
        if full:  # counted as dropped when it is sent
            self._flush_pending()
        elif first:
            loop.call_later(_BATCH_SECONDS, self._flush_pending)
        return True

    def _flush_pending(self) -> None:
        with self._lock:
            items, rows = self._pending, self._pending_rows
            self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
        if items:
            self._send_batch(items, rows)

    def _send_batch(self, pending: list[tuple], rows: int) -> None:
        """One datagram of (rows, item)s, halved until it fits (objects longer than estimated)."""
        data = _dumps([item for _, item in pending])
        if len(data) <= self._max_datagram or len(pending) == 1:
            self._send(data, rows, queued=False)
            return
        half = len(pending) // 2
        for part in (pending[:half], pending[half:]):
            self._send_batch(part, sum(n for n, _ in part))

    def _send(self, data: bytes, rows: int, queued: bool = True) -> bool:
        """One datagram to the child; when it cannot take it now (or is gone), dropped, counted."""
        try:
            self._sock.send(data)
        except (BlockingIOError, OSError, AttributeError) as e:
            if isinstance(e, OSError) and e.errno == errno.EMSGSIZE:
                log.error("inference log: a request is too large to log", extra={"rows": rows})
            elif not isinstance(e, BlockingIOError) and not self._gone:
                self._gone = True  # said once; every later request is counted as dropped
                log.error("inference log writer is gone", extra={"pid": self.pid, "error": str(e)})
            self._count_rows("dropped", rows)
            return False
        if queued:
            self._on_rows("queued", rows)
        return True

    def _count_rows(self, outcome: str, rows: int) -> None:
        with self._lock:
            if outcome == "dropped":
                self.dropped += rows
            elif outcome == "written":
                self.written += rows
                self.files += 1
        self._on_rows(outcome, rows)

    def _count(self, counts_in) -> None:
        """The child's outcomes (written, dropped), until it exits."""
        with contextlib.suppress(EOFError, OSError), counts_in:
            while True:
                outcome, rows = _recv(counts_in)
                self._count_rows(outcome, rows)

    def close(self, timeout: float = 30.0) -> None:
        """Stops sending; the child writes everything it received, reports, and exits."""
        self._flush_pending()
        sock, self._sock = self._sock, None
        if sock is None:
            return
        sock.close()  # the child reads what is queued, then end-of-file
        try:
            self._child.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("inference log writer did not finish in time", extra={"pid": self.pid})
            self._child.kill()
        self._reader.join(timeout)


def _portable(store):
    """The store as the child gets it: pickled when it can be, else its URI (S3: a live client).

    A reopened URI reads its settings from the environment, as `app.app_from_env` does.
    """
    if store is None:
        return None
    try:
        return pickle.dumps(store)
    except (TypeError, AttributeError, pickle.PicklingError):
        return store.uri


def _plain(values: np.ndarray | None):
    """A column as something cheap to pickle: (dtype, bytes) or (dtype, list), else itself.

    Numbers go as bytes, objects as a list. Pickling an ndarray costs ~10 us whatever its
    size; a 100-row request's ten columns all as lists cost ~55 us with the pickle, numbers as
    bytes ~20 us.
    """
    if values is not None:
        dtype = values.dtype
        if dtype.kind in _RAW_KINDS and dtype.isnative:  # `char`: 8x cheaper than `str`
            return dtype.char, values.tobytes()
        if dtype.kind == "O":
            return "O", values.tolist()
    return values


def _dumps(items: list) -> bytes:
    """Items pickled without the memo (`fast`): cheaper for many short strings.

    A 100-row request's 500 strings cost ~9 instead of ~25 us. Safe for these items: tuples,
    lists, dicts, bytes and parsed JSON values have no cycles (a shared object is only copied).
    """
    sink = io.BytesIO()
    pickler = pickle.Pickler(sink, 5)
    pickler.fast = True
    pickler.dump(items)
    return sink.getvalue()


def _array(value) -> np.ndarray:
    if isinstance(value, tuple):  # from _plain
        dtype, items = value
        if isinstance(items, bytes):
            return np.frombuffer(items, dtype=dtype)
        return np.array(items, dtype=dtype)
    return value


def _width(arrays: Mapping[str, np.ndarray]) -> int:
    """A row's estimated share of a datagram (objects counted at 64 bytes)."""
    return sum(64 if v.dtype.kind == "O" else v.dtype.itemsize for v in arrays.values()) + 80


def _slices(arrays: Mapping[str, np.ndarray], rows: int):
    """Row ranges whose datagram stays near `_SLICE_BYTES`."""
    step = max(1, _SLICE_BYTES // _width(arrays))
    return [(lo, min(lo + step, rows)) for lo in range(0, max(rows, 1), step)]


def _recv(conn: mpc.Connection):
    """One message the child sent (plain tuples of str and int only)."""
    return pickle.loads(conn.recv_bytes())


def _child_main(sock_fd: str, counts_fd: str) -> None:
    """The log's process: datagrams in, an `InferenceLogger` writing Parquet, counts out.

    The store and settings arrive pickled on stdin (from the server, nothing else).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=int(sock_fd))
    counts = mpc.Connection(int(counts_fd), readable=False)
    store, settings = pickle.loads(sys.stdin.buffer.read())
    if isinstance(store, bytes):
        store = pickle.loads(store)
    else:
        store = store_base.open_store(store, config.StoreSettings.from_env())
    # Background work: a flush encodes for 100+ ms, and at the default priority it took a core
    # from the server's event loop (p99 10.6 -> 25 ms with the log on, bench/serving_tail.py).
    # nice, not SCHED_IDLE (the shadow child's): under sustained saturation an idle-class writer
    # would get no CPU at all and every log row would be dropped; the monitor needs them.
    # Only now: the server waits for "ready", so a niced start-up (unpickling the store may
    # import modules) only delayed it, past start()'s 60 s on a loaded machine. Before the
    # writer's thread starts: Linux keeps nice per thread, and a new thread inherits it.
    os.nice(_NICE)
    lock = threading.Lock()

    def report(outcome: str, rows: int) -> None:
        if outcome != "queued":  # the server counted it when it sent
            with lock:
                counts.send_bytes(pickle.dumps((outcome, rows)))

    writer = InferenceLogger(store, sample_rate=1.0, on_rows=report, **settings).start()
    counts.send_bytes(pickle.dumps(("ready", 0)))
    # a datagram is never larger than the sender's buffer; one receive buffer, allocated once
    buffer = bytearray(2 * _SOCKET_BUFFER)
    view = memoryview(buffer)
    while size := sock.recv_into(buffer):
        for cols, predict, proba, passthrough, *head in pickle.loads(view[:size]):
            arrays = {k: _array(v) for k, v in cols.items()}
            writer._enqueue(_Chunk(arrays, _array(predict), _array(proba), *head, passthrough))
    writer.close()
    counts.close()
