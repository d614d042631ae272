"""The HTTP layer: routes for V1, V2, health, metrics and admin, and errors -> HTTP in one place.

Two ways in, one wrapper. Inference (`/v1/models/M:predict`, `/v2/models/M[/versions/V]/infer`)
is answered straight from ASGI messages by `InferenceLane`, because Starlette's per-request
machinery costs as much as validating and predicting one row; every other route (health,
metadata, /metrics, admin) goes through Starlette. Both call `_Handlers.answer`, the one place
where a handler runs, an exception becomes a status code (`error_response`) and the request is
counted in /metrics. Handlers stay thin: read the body (size-limited), let a codec parse it, hand
it to the data plane, and let the codec format the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import re
import sys
import time

import orjson
from starlette import applications, exceptions, requests, responses, routing

from kfops import config as kconfig
from kfops import errors
from kfops.serving import (
    batching,
    challenger,
    dataplane,
    inference_log,
    labels_route,
    manager,
    metrics,
    model,
    settings,
    v1,
    v2,
)
from kfops.serving import errors as serr
from kfops.store import base as store_base

log = logging.getLogger("kfops.serving")
# How long a busy Python thread (the inference log's Parquet encoding, the batcher, the shadow
# lane) may keep the GIL while the event loop waits for it (CPython's default is 5 ms). During a
# log flush of 10k rows, an event loop woken every 0.2 ms waited up to 13-24 ms per wake in 7 of 9
# trials with 5 ms, and at most 2.8-5.6 ms in 8 of 9 with 0.5 ms (bench/serving_stalls.py, load
# average ~12 on 2 cores: one outlier each way).
SWITCH_INTERVAL = 0.0005
SPEC_ENV = "KFOPS_SERVE_SPEC"
JSON = "application/json"
OCTET_STREAM = "application/octet-stream"
_JSON_BYTES, _OCTET_BYTES = JSON.encode(), OCTET_STREAM.encode()
# Binary tensor data extension: the length of the JSON header that starts the body.
INFERENCE_HEADER = "inference-header-content-length"
VERSION_HEADER = b"x-model-version"
_NAN_HINT = " (NaN and Infinity are not JSON: send null for a missing value)"


def build_app(config: settings.ServeConfig, source: model.ModelSource, log_store=None):
    """Loads the model (failing fast) and returns the Starlette app serving it.

    Args:
        config: server settings.
        source: where models come from (registry, directory, memory).
        log_store: Store for inference logs; None disables logging.

    Raises:
        NotFound, IntegrityError, ModelError: the model cannot be served.
    """
    meters = metrics.Metrics()
    models = manager.ModelManager(
        source, config.name, config.version, config.policy, meters.swapped, config.fast_path
    )
    models.load()
    logger = None
    if log_store is not None and config.log_sample_rate > 0:
        logger = inference_log.ProcessLogger(
            log_store,
            config.name,
            config.log_sample_rate,
            queue_rows=config.log_queue_rows,
            flush_rows=config.log_flush_rows,
            flush_seconds=config.log_flush_seconds,
            on_rows=meters.log_outcome,
        )
    batcher = batching.MicroBatcher(
        config.batch_window_ms / 1000.0, config.batch_max_rows, meters.observe_predict_call
    )
    handlers = _Handlers(config, dataplane.DataPlane(models, meters, logger, batcher))
    handlers.label_store = log_store  # delayed labels go where the requests were logged
    handlers.plane.rollout = _challenger_lane(config, source, log_store, meters)
    app = applications.Starlette(
        routes=handlers.routes(),
        lifespan=handlers.lifespan,
        exception_handlers={exceptions.HTTPException: _http_error},
    )
    app.state.plane = handlers.plane
    return InferenceLane(app, handlers)


def _challenger_lane(config: settings.ServeConfig, source, store, meters):
    """The rollout lane: fixed by `config.challenger`, else following the registry's pointer.

    None when neither applies (a pinned version, a model directory, polling off).
    """
    reader = None
    if config.challenger is None:
        reg = getattr(source, "registry", None)
        if reg is None or config.version is not None or config.poll_seconds <= 0:
            return None
        from kfops import rollout  # noqa: PLC0415

        def reader():
            return rollout.running_plan(rollout.pointer(reg, config.name))

    def managers(version: str) -> manager.ModelManager:
        return manager.ModelManager(
            source, config.name, version, config.policy, None, config.fast_path
        )

    log_kw = {
        "queue_rows": config.log_queue_rows,
        "flush_rows": config.log_flush_rows,
        "flush_seconds": config.log_flush_seconds,
    }
    events = None if store is None else challenger.EventLog(store, config.name, **log_kw)
    spec, reg = None, getattr(source, "registry", None)
    if reg is not None:  # the shadow child reopens the registry's store from its URI
        spec = {
            "store": reg.store.uri,
            "name": config.name,
            "policy": config.policy,
            "fast_path": config.fast_path,
            "events": None if store is None else log_kw,
        }
    lane = challenger.ChallengerLane(
        managers, events, reader, config.plan, worker_spec=spec,
        on_shadow=meters.observe_shadow, on_restart=meters.observe_shadow_restart,
        check=None if reg is None else (lambda version: reg.manifest(config.name, version)),
    )  # fmt: skip
    if reader is not None:
        lane.follow()
    return lane


class InferenceLane:
    """The ASGI entry point: inference paths are answered here, everything else by Starlette.

    A single-row request spends microseconds in the model; Starlette's per-request machinery
    (routing, Request, the body stream, Response) cost as much as validation and prediction
    together. Inference requests therefore go straight from ASGI messages to the data plane and
    back; health, metadata, metrics and admin routes keep Starlette.

    Attributes:
        app: the Starlette app (routes other than inference, lifespan).
        state: the Starlette app's state (`state.plane` is the data plane).
    """

    def __init__(self, app: applications.Starlette, handlers: _Handlers):
        self.app, self.handlers, self.state = app, handlers, app.state

    async def __call__(self, scope, receive, send) -> None:
        """ASGI: an inference path goes to the data plane, anything else to Starlette."""
        if scope["type"] == "http":
            path = scope["path"]
            for pattern, label in _INFER_PATHS:
                found = pattern.fullmatch(path)
                if found is not None:
                    await self.handlers.infer_http(label, found.groupdict(), scope, receive, send)
                    return
        await self.app(scope, receive, send)


_INFER_PATHS = (
    (re.compile(r"/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer"), "v2_infer"),
    (re.compile(r"/v1/models/(?P<name>[^/]+):predict"), "v1_predict"),
)


def app_from_env():
    """App factory for `--workers N`: each uvicorn worker process rebuilds the app from the spec.

    The spec (config, store URI, model dir) is JSON in KFOPS_SERVE_SPEC, set by `server.run`; it
    never holds credentials, which each worker reads with StoreSettings.from_env() like the CLI.
    A worker is a fresh (spawned) process, so it sets up the JSON logs again: without that its
    info lines ("serving", "inference log flushed") were lost.
    """
    from kfops.serving import server  # noqa: PLC0415 (server imports this module)

    server.configure_logging()
    spec = orjson.loads(os.environ[SPEC_ENV])
    cfg = settings.ServeConfig(**spec["config"])
    store = (
        store_base.open_store(spec["store"], kconfig.StoreSettings.from_env())
        if spec["store"]
        else None
    )
    return build_app(cfg, model.open_source(store, spec["model_dir"]), store)


def error_response(exc: Exception) -> responses.Response:
    """The one mapping from exceptions to HTTP, as a Starlette response."""
    status, body = error_payload(exc)
    return json_response(body, status, getattr(exc, "headers", None))


def error_payload(exc: Exception) -> tuple[int, dict]:
    """The one mapping from exceptions to HTTP: kfops errors carry their status, others are 500."""
    if isinstance(exc, errors.KfopsError):
        status, body = exc.http_status, {"error": str(exc)}
        if isinstance(exc, serr.InvalidInput):
            body["problems"] = [p.to_dict() for p in exc.problems]
        if status >= 500:
            log.error("request failed", extra={"status": status, "error": str(exc)}, exc_info=exc)
    else:
        status, body = 500, {"error": "internal server error"}
        log.error("unexpected error", exc_info=exc)
    return status, body


class Raw:
    """An inference answer as its ASGI messages need it.

    Building one costs a fraction of a Starlette Response (measured: 0.7 against 5.6 us), which
    matters on a path that spends ~200 us of CPU per request in all.
    """

    __slots__ = ("body", "raw_headers", "status_code")

    def __init__(self, status: int, body: bytes, media: bytes = _JSON_BYTES, headers=()):
        self.status_code, self.body = status, body
        self.raw_headers = [
            (b"content-type", media),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ]


def raw_json(obj, headers=(), status: int = 200) -> Raw:
    """A JSON `Raw` answer serialised by orjson (numpy arrays included)."""
    return Raw(status, orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), _JSON_BYTES, headers)


def raw_error(exc: Exception) -> Raw:
    """`error_response` for the inference lane: the same mapping, as a `Raw` answer."""
    status, body = error_payload(exc)
    extra = [(k.encode(), v.encode()) for k, v in getattr(exc, "headers", {}).items()]
    return raw_json(body, extra, status)


def json_response(obj, status: int = 200, headers=None) -> responses.Response:
    """A JSON response serialised by orjson (numpy arrays included)."""
    return responses.Response(
        orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), status, headers, JSON
    )


async def _http_error(request, exc: exceptions.HTTPException) -> responses.Response:
    return json_response(
        {"error": f"{exc.detail}: {request.method} {request.url.path}"}, exc.status_code
    )


class _Handlers:
    """Route handlers bound to one data plane and config."""

    def __init__(self, config: settings.ServeConfig, plane: dataplane.DataPlane):
        self.config, self.plane = config, plane
        self.label_store = None  # the store that takes delayed labels (build_app sets it)
        self.meters = plane.metrics

    def routes(self) -> list[routing.Route]:
        """Every route but inference (`InferenceLane` answers those).

        V2 model routes also exist under /versions/{version}.
        """
        r = [
            ("/v2/health/live", "GET", self.live, "v2_live"),
            ("/v2/health/ready", "GET", self.ready, "v2_ready"),
            ("/v2", "GET", self.server_metadata, "v2_server"),
            ("/v1/models/{name}", "GET", self.v1_model, "v1_model"),
            ("/metrics", "GET", self.metrics, "metrics"),
        ]
        for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
            r += [
                (prefix, "GET", self.model_metadata, "v2_metadata"),
                (prefix + "/ready", "GET", self.model_ready, "v2_model_ready"),
            ]
        r.append(("/v2/models/{name}/labels", "POST", self.labels, "v2_labels"))
        if self.config.admin:
            r.append(("/v2/repository/models/{name}/load", "POST", self.load, "v2_load"))
        return [
            routing.Route(path, self._endpoint(label, fn), methods=[method])
            for path, method, fn, label in r
        ]

    def _endpoint(self, label: str, fn):
        """A Starlette endpoint running `fn(request)` through `answer`."""

        async def handler(request: requests.Request) -> responses.Response:
            return await self.answer(label, request.method, fn, request)

        return handler

    async def answer(self, label: str, method: str, fn, *args, error=error_response):
        """Runs one handler: its response, or its exception as an error response; counted.

        This is the only try -> status -> metrics wrapper: Starlette routes (`_endpoint`) and
        the raw ASGI inference lane (`infer_http`, whose handlers and `error` build `Raw`
        answers) both go through it.
        """
        start = time.perf_counter()
        try:
            response = await fn(*args)
        except Exception as exc:  # noqa: BLE001 (this is the one place errors become HTTP)
            response = error(exc)
        self.meters.observe_request(
            label, method, response.status_code, time.perf_counter() - start
        )
        return response

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        """Starts the log writer and champion poller; on shutdown stops polling and flushes logs."""
        logger, models = self.plane.inference_log, self.plane.manager
        batching.one_native_thread()  # the event loop predicts small requests inline
        sys.setswitchinterval(SWITCH_INTERVAL)
        if logger is not None:
            logger.start()
        poller = grpc = None
        if self.config.poll_seconds > 0 and self.config.version is None:
            poller = asyncio.create_task(models.poll(self.config.poll_seconds))
        lane, lane_poller = self.plane.rollout, None
        if lane is not None:
            lane.start()
            if lane.events is not None:
                lane.events.start()
            if lane.plan_reader is not None:
                lane_poller = asyncio.create_task(lane.poll(self.config.poll_seconds))
        if self.config.grpc_port is not None:
            # Imported here: grpcio is needed only when gRPC is asked for.
            from kfops.serving import grpc_server  # noqa: PLC0415

            grpc, app.state.grpc_port = await grpc_server.start(
                self, self.config.grpc_port, self.config.host
            )
        log.info(
            "serving", extra={"model": self.config.name, "version": models.current.model.version}
        )
        try:
            yield
        finally:
            if grpc is not None:  # refuses new calls, lets those in flight finish
                await grpc.stop(self.config.drain_seconds)
            for task in (poller, lane_poller):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if lane is not None:
                await asyncio.to_thread(lane.close)
                if lane.events is not None:
                    await asyncio.to_thread(lane.events.close, max(self.config.drain_seconds, 5.0))
            if self.plane.batcher is not None:
                await asyncio.to_thread(self.plane.batcher.close)
            if logger is not None:
                await asyncio.to_thread(logger.close, max(self.config.drain_seconds, 5.0))
                log.info(
                    "inference log flushed",
                    extra={"written": logger.written, "dropped": logger.dropped},
                )

    async def live(self, request):
        return json_response({"live": True})

    async def ready(self, request):
        if self.plane.manager.current is None:
            raise serr.ModelNotReady("no model loaded yet")
        return json_response({"ready": True})

    async def server_metadata(self, request):
        return json_response(v2.server_metadata())

    async def model_metadata(self, request):
        active = self.plane.resolve(request.path_params["name"], request.path_params.get("version"))
        return json_response(v2.metadata(active.model))

    async def model_ready(self, request):
        active = self.plane.resolve(request.path_params["name"], request.path_params.get("version"))
        return json_response(
            {"name": active.model.name, "version": active.model.version, "ready": True}
        )

    async def v1_model(self, request):
        return json_response(v1.model_status(self.plane.resolve(request.path_params["name"]).model))

    async def infer_http(self, label: str, params: dict, scope, receive, send) -> None:
        """One inference request from ASGI messages to ASGI messages (see `InferenceLane`)."""
        infer = self.v2_infer if label == "v2_infer" else self.v1_predict
        response = await self.answer(
            label, scope["method"], infer, params, scope, receive, error=raw_error
        )
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    async def v1_predict(self, params: dict, scope, receive) -> Raw:
        headers = _post_headers(scope)
        with self.plane.arrival() as arrival:
            active = self.plane.resolve(params["name"])
            body = await self._read_json(headers, receive)
            rid = _request_id(headers)
            # Passed in rather than `dataclasses.replace`d after: 4-8 us less per request.
            parsed = v1.parse(
                body, active.validator.names, self.config.max_batch_rows, rid, self._route(headers)
            )
            result = await self.plane.infer_async(active, parsed, "v1", arrival)
        return raw_json(v1.response(result), _answer_headers(rid, result))

    async def v2_infer(self, params: dict, scope, receive) -> Raw:
        headers = _post_headers(scope)
        with self.plane.arrival() as arrival:
            active = self.plane.resolve(params["name"], params.get("version"))
            body, binary = await self._read_v2(headers, receive)
            parsed = v2.parse(
                body,
                active.validator.dtypes,
                active.model.output_names,
                self.config.max_batch_rows,
                binary,
            )
            rid = parsed.request_id or _request_id(headers)
            parsed = dataclasses.replace(parsed, request_id=rid, route_key=self._route(headers))
            result = await self.plane.infer_async(active, parsed, "v2", arrival)
        if not parsed.binary_outputs:
            return raw_json(v2.response(result, rid), _answer_headers(rid, result))
        header, chunks = v2.binary_response(result, rid, parsed.binary_outputs)
        head = orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY)
        return Raw(
            200,
            b"".join((head, *chunks)),
            _OCTET_BYTES,
            (
                *_answer_headers(rid, result),
                (INFERENCE_HEADER.encode(), str(len(head)).encode()),
            ),
        )

    def _route(self, headers: dict) -> str:
        """The canary's sticky key: the configured header's value (empty: the request id)."""
        if self.plane.rollout is None:
            return ""
        value = headers.get(self.config.rollout_key_header.lower().encode("latin-1"))
        return value.decode("latin-1") if value else ""

    async def _read_v2(self, headers: dict, receive) -> tuple[object, memoryview | bytes]:
        """A V2 body: (parsed JSON header, the binary tensor data after it).

        With an Inference-Header-Content-Length header, the body is that many bytes of JSON
        followed by the inputs' binary data (Triton's binary tensor data extension).
        """
        given = headers.get(INFERENCE_HEADER.encode())
        if given is None:
            return await self._read_json(headers, receive), b""
        data = await self._read_body(headers, receive, OCTET_STREAM)
        text = given.decode("latin-1").strip()
        if not text.isdigit() or int(text) > len(data):
            raise serr.MalformedRequest(
                f"{INFERENCE_HEADER} {text!r} must be the JSON header's length in bytes, "
                f"at most the body's {len(data)}"
            )
        size = int(text)
        view = memoryview(data)
        return _json(bytes(view[:size])), view[size:]

    async def load(self, request):
        """Admin: load the champion (or `{"parameters": {"version": "3"}}`) and swap it in."""
        name = request.path_params["name"]
        if name != self.config.name:
            raise serr.ModelNotFound(
                f"model {name!r} is not served here; this server serves {self.config.name!r}"
            )
        body = await self._read_json(dict(request.scope["headers"]), request.receive, True)
        params = body.get("parameters", {}) if isinstance(body, dict) else {}
        version = params.get("version") if isinstance(params, dict) else None
        if not isinstance(params, dict) or not isinstance(version, str | None):
            raise serr.InvalidInput(
                [serr.problem("parameters.version", "type", "expected a string")]
            )
        active = await asyncio.to_thread(self.plane.manager.load, version)
        return json_response({"name": name, "version": active.model.version, "loaded": True})

    async def labels(self, request):
        """Delayed labels for logged requests (kfops.serving.labels_route)."""
        return json_response(await labels_route.deliver(self, request))

    async def metrics(self, request):
        return responses.Response(self.meters.exposition(), media_type=metrics.CONTENT_TYPE)

    async def _read_json(self, headers: dict, receive, allow_empty: bool = False):
        """Reads at most max_body_bytes of JSON; refuses other content types and bigger bodies.

        Args:
            headers: the request's raw ASGI headers as a dict (lower-case bytes -> bytes).
            receive: the ASGI receive callable.
            allow_empty: an empty body is None rather than an error.
        """
        data = await self._read_body(headers, receive)
        if not data.strip():
            if allow_empty:
                return None
            raise serr.MalformedRequest("empty body: send a JSON object")
        return _json(data)

    async def _read_body(self, headers: dict, receive, also: str = "") -> bytes:
        """The whole body, at most max_body_bytes; JSON (or the media type `also`) only."""
        limit = self.config.max_body_bytes
        ctype = headers.get(b"content-type")
        if ctype:
            media = ctype.decode("latin-1").split(";", 1)[0].strip().lower()
            if media != JSON and not media.endswith("+json") and media != also:
                raise serr.UnsupportedMediaType(
                    f"content type {media!r} is not supported; send {JSON}"
                )
        length = headers.get(b"content-length", b"").decode("latin-1")
        if length.isdigit() and int(length) > limit:
            raise serr.PayloadTooLarge(f"body of {length} bytes exceeds the limit of {limit} bytes")
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                raise serr.MalformedRequest("the client disconnected before sending the body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise serr.PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _json(data: bytes):
    """Parsed JSON, or MalformedRequest saying why (with a hint for NaN and Infinity)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        hint = _NAN_HINT if b"NaN" in data or b"Infinity" in data else ""
        raise serr.MalformedRequest(f"body is not valid JSON: {e}{hint}") from e


def _post_headers(scope) -> dict:
    """The request's headers (lower-case bytes -> bytes); inference accepts only POST.

    Raises:
        MethodNotAllowed: any other method (405 with `allow: POST`).
    """
    if scope["method"] != "POST":
        raise serr.MethodNotAllowed(f"Method Not Allowed: {scope['method']} {scope['path']}")
    return dict(scope["headers"])


def _answer_headers(rid: str, result) -> tuple:
    """x-request-id, and which version answered (a canary may answer instead of the champion)."""
    return (
        (b"x-request-id", rid.encode("latin-1")),
        (VERSION_HEADER, result.model.version.encode("latin-1")),
    )


def _request_id(headers: dict) -> str:
    """The caller's x-request-id, else a fresh one."""
    given = headers.get(b"x-request-id")
    return given.decode("latin-1") if given else new_request_id()


class _Ids:
    """Request ids without a syscall: 64 random bits per process, then a counter (32 hex digits).

    `uuid4()` reads the kernel's random source per call (getrandom), which releases the GIL; under
    saturation getting it back took ~50 us per request (bench/RESULTS.md, shadow profile). A new
    prefix per process (and after a fork) keeps ids unique across workers and restarts.
    """

    def __init__(self):
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix, self.counter = os.urandom(8).hex(), itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


new_request_id = _Ids()
