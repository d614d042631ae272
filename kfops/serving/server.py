"""Running the app: uvicorn (one process or N workers), SIGTERM drain, JSON logs.

uvicorn already does the graceful part of SIGTERM: it stops accepting connections, lets in-flight
requests finish (up to `drain_seconds`), then runs the app's lifespan shutdown, which stops the
gRPC server (when `--grpc-port` is set: it refuses new calls from then on and gives those in
flight `drain_seconds` more) and flushes the inference log. `running()` starts the same server
in a background thread on an ephemeral port, for tests and infra-validate.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator

import orjson
import uvicorn
from uvicorn.protocols.http import httptools_impl

from kfops import errors
from kfops.serving import app as app_mod
from kfops.serving import model, settings

_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_LOGGERS = ("kfops", "uvicorn", "uvicorn.error", "uvicorn.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Renders the record as compact JSON."""
        out = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure_logging(level: str = "info") -> None:
    """Sends kfops and uvicorn logs to stderr as JSON lines (the root logger is left alone)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


def run(
    config: settings.ServeConfig,
    store=None,
    store_uri: str | None = None,
    model_dir: str | None = None,
) -> None:
    """Serves until SIGTERM/SIGINT. Loads the model before binding, so a bad model fails fast.

    Args:
        config: server settings.
        store: opened Store (registry and inference logs), or None with `model_dir`.
        store_uri: the store's URI, passed to worker processes when `config.workers > 1`.
        model_dir: serve model.joblib + schema.json from this directory instead of the registry.

    Raises:
        KfopsError: the model cannot be loaded (NotFound, IntegrityError, ModelError, ConfigError).
    """
    configure_logging()
    source = model.open_source(store, model_dir)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    if config.workers == 1:
        uvicorn.Server(_uvicorn_config(app_mod.build_app(config, source, store), config)).run()
        return
    source.load(config.name, config.version)
    # Workers are fresh processes: they rebuild the app from this spec (no credentials in it).
    spec = {"config": dataclasses.asdict(config), "store": store_uri, "model_dir": model_dir}
    os.environ[app_mod.SPEC_ENV] = orjson.dumps(spec).decode()
    uvicorn.run(
        "kfops.serving.app:app_from_env",
        factory=True,
        workers=config.workers,
        **_uvicorn_kwargs(config),
    )


class OneWriteProtocol(httptools_impl.HttpToolsProtocol):
    """uvicorn's httptools protocol, sending each answer's header block and body in one write.

    uvicorn writes the status line and headers at `http.response.start` and the body at
    `http.response.body` (uvicorn/protocols/http/httptools_impl.py, `RequestResponseCycle.send`);
    uvloop sends each write at once (`UVStream._initiate_write`'s fast path) with TCP_NODELAY, so
    every answer was two send() calls and two TCP segments, and the client woke to read twice
    (strace under wrk -c8: 1238 writes for 620 requests). Each request's cycle gets a transport
    that holds the header block until the body joins it; a body that does not follow in the same
    step (a streamed response) finds the headers already sent by a `call_soon`.
    """

    def _start_asgi_task(self, cycle, app) -> None:
        cycle.transport = _HeldHead(cycle.transport, self.loop)
        super()._start_asgi_task(cycle, app)


# What uvicorn's `receive` writes, before any answer, when the client sent `Expect: 100-continue`.
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _HeldHead:
    """One request cycle's view of the connection's transport (see `OneWriteProtocol`).

    It keeps no reference to the cycle (which references it), so a request's objects still die
    by reference counting rather than waiting for the cyclic garbage collector.
    """

    __slots__ = ("_transport", "_loop", "_head", "_started")

    def __init__(self, transport, loop):
        self._transport, self._loop = transport, loop
        self._head: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        """The cycle's first write but 100 Continue is the header block: held, flushed soon."""
        if not self._started and data != _CONTINUE:
            self._started, self._head = True, data
            self._loop.call_soon(self._flush)
            return
        if self._head is not None:
            data, self._head = self._head + data, None
        self._transport.write(data)

    def _flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


def _exit_cleanly(signum, frame) -> None:
    """SIGTERM outside uvicorn's own handling: exit 0.

    uvicorn swaps in its handler while serving, drains, then re-raises the signal with the
    previous handler restored; this is that handler, so a drained server exits 0 rather than
    "killed by SIGTERM". Before uvicorn starts there is nothing to drain, so exiting is right too.
    """
    raise SystemExit(0)


def _uvicorn_kwargs(config: settings.ServeConfig) -> dict:
    return {
        "host": config.host,
        "port": config.port,
        "lifespan": "on",
        "log_config": None,
        "access_log": config.access_log,
        "timeout_graceful_shutdown": config.drain_seconds,
        "server_header": False,
        "loop": "uvloop",
        "http": OneWriteProtocol,
    }


def _uvicorn_config(app, config: settings.ServeConfig) -> uvicorn.Config:
    return uvicorn.Config(app, **_uvicorn_kwargs(config))


class _Stoppable(uvicorn.Server):
    """uvicorn's server whose main loop wakes as soon as `stop` is called from another thread.

    uvicorn polls `should_exit` every 0.1 s, so stopping an in-thread server (`running`: every
    infra-validate and many tests) waited 0.05 s on average for the next tick. (Its shutdown
    still sleeps 0.1 s for open connections; that part is uvicorn's and stays.)
    """

    tick_seconds = 0.1  # uvicorn's: the date header is refreshed every 10 ticks
    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._wake, self._loop = asyncio.Event(), asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):  # as uvicorn's, which sleeps 0.1 s per tick
            counter = (counter + 1) % 864000
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_seconds)

    def stop(self) -> None:
        """Stops the server now (thread-safe).

        Called before its loop runs, only the flag is set: uvicorn's `Server._serve` (0.54) reads
        it right after start-up and skips its main loop.
        """
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(wake.set)


@contextlib.contextmanager
def running(app, host: str = "127.0.0.1", drain_seconds: float = 5.0) -> Iterator[str]:
    """Serves `app` with real uvicorn in a background thread on a free port; yields the base URL.

    Example:
        with server.running(app) as url:
            httpx.get(f"{url}/v2/health/ready")

    Raises:
        ModelError: the server did not start within 10 seconds.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    cfg = uvicorn.Config(
        app,
        host=host,
        lifespan="on",
        loop="uvloop",
        http=OneWriteProtocol,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=drain_seconds,
    )
    srv = _Stoppable(cfg)
    thread = threading.Thread(
        target=srv.run, kwargs={"sockets": [sock]}, name="kfops-uvicorn", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            srv.should_exit = True
            sock.close()
            raise errors.ModelError("the inference server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        srv.stop()
        thread.join(drain_seconds + 10)
        sock.close()
