"""Open Inference Protocol over gRPC: `inference.GRPCInferenceService` on its own port.

The same data plane as REST: a ModelInfer request becomes the V2 request body it stands for
(typed `contents`, or `raw_input_contents` as binary tensor data) and goes through `v2.parse`,
schema validation, prediction, /metrics and the inference log exactly as `/v2/.../infer` does.
Outputs always come back as `raw_output_contents`, as Triton answers. Errors map to gRPC status
codes in `_CODES` (a bad request is INVALID_ARGUMENT naming each field, as the REST 400 does).

The server is grpc.aio on the app's own event loop, started and stopped by the app's lifespan.
Message classes come from the committed descriptor (open_inference_desc.py, generated from
open_inference.proto) in a private descriptor pool, so a process that also imports a client
defining the same `inference.*` messages (tritonclient.grpc) does not collide with them.
Method paths and messages follow kserve/open-inference-protocol
specification/protocol/open_inference_grpc.proto; KServe's own servicer
(kserve python/kserve/kserve/protocol/grpc/servicer.py) maps the same RPCs to its data plane.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import time

import grpc
import orjson
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc import aio

from kfops import errors
from kfops.serving import app as app_mod
from kfops.serving import errors as serr
from kfops.serving import open_inference_desc, v2

SERVICE = "inference.GRPCInferenceService"
RPCS = ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer")
_FILE = descriptor_pb2.FileDescriptorProto.FromString(
    base64.b64decode(open_inference_desc.FILE_DESCRIPTOR_BASE64)
)
_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_FILE)
MESSAGES = message_factory.GetMessages([_FILE], pool=_POOL)
# HTTP status of a kfops error -> gRPC status code (KServe's servicer maps its errors alike).
_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
}
# Which typed contents field carries each V2 datatype (open_inference_grpc.proto).
_CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def message(name: str):
    """The message class `inference.<name>` (for clients and tests speaking to this server)."""
    return MESSAGES[f"inference.{name}"]


class Servicer:
    """The six RPCs, bound to one app's handlers (data plane, config, metrics)."""

    def __init__(self, handlers):
        self.handlers, self.plane = handlers, handlers.plane

    def rpc_handlers(self) -> grpc.GenericRpcHandler:
        """Every RPC as a unary-unary handler with this pool's (de)serializers."""
        methods = {rpc: self._method(rpc, getattr(self, _snake(rpc))) for rpc in RPCS}
        return grpc.method_handlers_generic_handler(SERVICE, methods)

    def _method(self, rpc: str, fn) -> grpc.RpcMethodHandler:
        request_type, response_type = message(f"{rpc}Request"), message(f"{rpc}Response")
        label = "grpc_" + _snake(rpc)
        meters = self.handlers.meters

        async def call(request, context):
            """The gRPC twin of `_Handlers.answer`: try -> status code -> metrics."""
            start = time.perf_counter()
            try:
                response = await fn(request, context, response_type)
            except Exception as exc:  # noqa: BLE001 (errors become gRPC status codes here)
                status, body = app_mod.error_payload(exc)
                code = _CODES.get(status, grpc.StatusCode.INTERNAL)
                meters.observe_request(label, "grpc", code.name, time.perf_counter() - start)
                await context.abort(code, body["error"])
            meters.observe_request(label, "grpc", "OK", time.perf_counter() - start)
            return response

        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=request_type.FromString,
            response_serializer=response_type.SerializeToString,
        )

    async def server_live(self, request, context, reply):
        """The process answers."""
        return reply(live=True)

    async def server_ready(self, request, context, reply):
        """A model is loaded."""
        return reply(ready=self.plane.manager.current is not None)

    async def model_ready(self, request, context, reply):
        """The named model (and version, if given) is the one served; else NOT_FOUND."""
        self.plane.resolve(request.name, request.version or None)
        return reply(ready=True)

    async def server_metadata(self, request, context, reply):
        """Name, version and protocol extensions, as GET /v2."""
        meta = v2.server_metadata()
        return reply(name=meta["name"], version=meta["version"], extensions=meta["extensions"])

    async def model_metadata(self, request, context, reply):
        """Inputs from the schema, outputs from the estimator, as GET /v2/models/M."""
        meta = v2.metadata(self.plane.resolve(request.name, request.version or None).model)
        out = reply(name=meta["name"], versions=meta["versions"], platform=meta["platform"])
        for kind in ("inputs", "outputs"):
            for tensor in meta[kind]:
                getattr(out, kind).add(**tensor)
        return out

    async def model_infer(self, request, context, reply):
        """One inference, through v2.parse and the data plane like POST .../infer."""
        config = self.handlers.config
        with self.plane.arrival() as arrival:
            active = self.plane.resolve(request.model_name, request.model_version or None)
            body, binary = _body(request)
            dtypes, outputs = active.validator.dtypes, active.model.output_names
            parsed = v2.parse(body, dtypes, outputs, config.max_batch_rows, binary)
            metadata = dict(context.invocation_metadata() or ())
            rid = parsed.request_id or metadata.get("x-request-id") or app_mod.new_request_id()
            parsed = dataclasses.replace(parsed, request_id=rid)
            result = await self.plane.infer_async(active, parsed, "v2", arrival)
        header, chunks = v2.binary_response(result, rid, frozenset(result.outputs))
        out = reply(model_name=header["model_name"], model_version=header["model_version"], id=rid)
        for tensor in header["outputs"]:
            added = out.outputs.add(
                name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"]
            )
            classes = tensor["parameters"].get("classes")
            if classes is not None:
                added.parameters["classes"].string_param = orjson.dumps(classes).decode()
        out.raw_output_contents.extend(chunks)
        return out


def _body(request) -> tuple[dict, bytes]:
    """The V2 JSON body a ModelInferRequest stands for, and its raw tensor bytes."""
    raw = list(request.raw_input_contents)
    body = {"inputs": []}
    if request.id:
        body["id"] = request.id
    if request.outputs:
        body["outputs"] = [{"name": o.name} for o in request.outputs]
    if raw and len(raw) != len(request.inputs):
        detail = f"{len(raw)} entries for {len(request.inputs)} inputs: send one per input"
        raise serr.InvalidInput([serr.problem("raw_input_contents", "shape", detail)])
    for i, tensor in enumerate(request.inputs):
        item = {"name": tensor.name, "shape": list(tensor.shape), "datatype": tensor.datatype}
        if raw:
            item["parameters"] = {v2.BINARY_SIZE: len(raw[i])}
        else:
            item["data"] = _contents(tensor)
        body["inputs"].append(item)
    return body, b"".join(raw)


def _contents(tensor) -> list:
    """Typed contents as JSON-like values; NaN stands for null, as in binary float tensors."""
    field = _CONTENTS.get(tensor.datatype)
    values = list(getattr(tensor.contents, field)) if field else []
    if tensor.datatype in ("FP32", "FP64"):
        values = [None if math.isnan(v) else v for v in values]
    return values


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


async def start(handlers, port: int, host: str) -> tuple[aio.Server, int]:
    """Starts the gRPC server on the running event loop; returns it and the bound port.

    Raises:
        ModelError: the port cannot be bound.
    """
    server = aio.server(
        options=[
            ("grpc.max_receive_message_length", handlers.config.max_body_bytes),
            ("grpc.max_send_message_length", -1),
        ]
    )
    server.add_generic_rpc_handlers((Servicer(handlers).rpc_handlers(),))
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as e:
        raise errors.ConfigError(f"cannot serve gRPC on {host}:{port}: {e}") from e
    await server.start()
    return server, bound
