"""Open Inference Protocol (V2): named input tensors in, named output tensors out.

One input per feature column, shape [n] or [n, 1], datatype compatible with the column's schema
type. Outputs are `predict` and, for classifiers, `predict_proba` (shape [n, classes]); a request
may ask for a subset with `"outputs": [{"name": ...}]`.

Tensor data comes as JSON (`"data"`) or, with the binary tensor data extension, as raw bytes
after the JSON header: an input with `parameters.binary_data_size` takes that many bytes, in
input order, little-endian, row-major, BOOL one byte, BYTES a 4-byte little-endian length before
each element. Outputs are binary when the request says so (`binary_data` on an output, else
`binary_data_output` on the request). This follows Triton's spec
(triton-inference-server/server docs/protocol/extension_binary_data.md) as KServe implements it
(kserve python/kserve/kserve/protocol/infer_type.py: InferRequest.from_bytes and
InferResponse.to_rest), so `tritonclient.http` works with its binary defaults. Binary floats have
no null: NaN in a binary FP tensor stands for a missing value (null in JSON).
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from kfops import __version__
from kfops.serving import dataplane, model
from kfops.serving import errors as serr

_NUMERIC = frozenset(
    {
        "FP16",
        "FP32",
        "FP64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
    }
)
ACCEPTS = {
    "float": _NUMERIC,
    "int": _NUMERIC,
    "bool": frozenset({"BOOL"}),
    "string": frozenset({"BYTES"}),
    "datetime": frozenset({"BYTES"}),
}
DECLARES = {"float": "FP64", "int": "INT64", "bool": "BOOL", "string": "BYTES", "datetime": "BYTES"}
_KEYS = frozenset({"id", "parameters", "inputs", "outputs"})
_INPUT_KEYS = frozenset({"name", "shape", "datatype", "data", "parameters"})
# Little-endian numpy dtypes of the fixed-size V2 datatypes (binary tensor data extension).
NUMPY = {
    "BOOL": np.dtype("?"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
BINARY_SIZE, BINARY_OUT, BINARY_ALL = "binary_data_size", "binary_data", "binary_data_output"
EXTENSIONS = ["model_repository", "binary_tensor_data"]
_LENGTH = struct.Struct("<I")


class _Binary:
    """The bytes after the JSON header, handed to binary inputs in the order they appear."""

    def __init__(self, data: bytes | memoryview):
        self.data, self.offset = memoryview(data), 0

    def take(self, size: int) -> memoryview | None:
        """The next `size` bytes, or None when fewer remain."""
        if self.offset + size > len(self.data):
            self.offset = len(self.data)
            return None
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk


def parse(
    body: Any,
    dtypes: Mapping[str, str],
    outputs: tuple[str, ...],
    max_rows: int,
    binary: bytes | memoryview = b"",
):
    """Turns a V2 body into named columns and the outputs asked for.

    `dtypes` maps each input name to its schema type (`Validator.dtypes`, built once per model).
    `binary` is what followed the JSON header (binary tensor data extension), else empty.

    Raises:
        MalformedRequest: the body is not a JSON object.
        PayloadTooLarge: a tensor has more than `max_rows` rows.
        InvalidInput: every structural, datatype and shape problem found.
    """
    if not isinstance(body, dict):
        raise serr.MalformedRequest('a V2 body must be a JSON object: {"inputs": [...]}')
    problems = [
        serr.problem(None, "unexpected", f"unknown key {k!r}; allowed: {sorted(_KEYS)}")
        for k in body
        if k not in _KEYS
    ]
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        detail = "required" if inputs is None else "must be a non-empty array of tensors"
        problems.append(serr.problem("inputs", "missing" if inputs is None else "shape", detail))
        raise serr.InvalidInput(problems)
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        problems.append(serr.problem("id", "type", "expected a string"))
    all_binary = _flag(body.get("parameters"), BINARY_ALL, "parameters", problems)
    wanted, as_binary = _outputs(body.get("outputs"), outputs, all_binary, problems)
    data = _Binary(binary)
    columns, rows = _columns(inputs, dtypes, max_rows, data, problems)
    if data.offset != len(data.data):
        detail = (
            f"{len(data.data)} bytes of binary tensor data follow the JSON header, but the "
            f"inputs' binary_data_size add up to {data.offset}"
        )
        problems.append(serr.problem("inputs", "shape", detail))
    if len(rows) != 1:
        raise serr.InvalidInput(problems)
    return dataplane.InferRequest(
        columns,
        rows.pop(),
        model.PREDICT_PROBA in wanted,
        request_id or "",
        wanted,
        tuple(problems),
        as_binary,
    )


def _flag(params: Any, key: str, where: str, problems: list) -> bool:
    """A boolean parameter (absent: False); anything but an object or a bool is a problem."""
    if params is None:
        return False
    if not isinstance(params, dict):
        problems.append(serr.problem(where, "type", "parameters must be an object"))
        return False
    value = params.get(key, False)
    if not isinstance(value, bool):
        problems.append(serr.problem(where, "type", f"{key} must be true or false"))
        return False
    return value


def _columns(
    inputs: list, dtypes: dict, max_rows: int, binary: _Binary, problems: list
) -> tuple[dict, set]:
    """Named flat columns from the tensors that are well-formed, and their row counts."""
    columns, rows = {}, set()
    for i, tensor in enumerate(inputs):
        name, data, n = _tensor(i, tensor, dtypes, max_rows, binary, problems)
        if name is None:
            continue
        if name in columns:
            problems.append(serr.problem(name, "duplicate", "input sent more than once"))
        columns[name] = data
        rows.add(n)
    if len(rows) > 1:
        detail = f"inputs disagree on the row count: {sorted(rows)}"
        problems.append(serr.problem("inputs", "shape", detail))
    return columns, rows


def _outputs(
    requested: Any, offered: tuple[str, ...], all_binary: bool, problems: list
) -> tuple[tuple[str, ...], frozenset]:
    """The outputs asked for (all by default), and those to send as binary data."""
    if requested is None:
        return offered, frozenset(offered if all_binary else ())
    items = requested if isinstance(requested, list) else [None]
    names = [o.get("name") if isinstance(o, dict) else None for o in items]
    unknown = [n for n in names if n not in offered]
    if unknown or not names:
        problems.append(
            serr.problem(
                "outputs",
                "unexpected",
                f"unknown outputs {unknown}; this model offers {list(offered)}",
            )
        )
    binary = set()
    for name, item in zip(names, items, strict=True):
        params = item.get("parameters") if isinstance(item, dict) else None
        if isinstance(params, dict) and params.get("classification"):
            detail = "the classification extension is not supported; ask for predict_proba"
            problems.append(serr.problem(f"outputs[{name}]", "unexpected", detail))
        is_binary = isinstance(params, dict) and BINARY_OUT in params
        if _flag(params, BINARY_OUT, f"outputs[{name}]", problems) or (
            all_binary and not is_binary
        ):
            binary.add(name)
    return tuple(n for n in offered if n in names), frozenset(binary)


def _tensor(i: int, tensor: Any, dtypes: dict, max_rows: int, binary: _Binary, problems: list):
    """Checks one input tensor; returns (name, flat data, rows) or (None, None, None)."""
    # A binary input's bytes are taken first, whatever else is wrong with it, so the inputs
    # after it still find theirs.
    chunk = _binary_chunk(i, tensor, binary, problems)
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        problems.append(
            serr.problem(
                f"inputs[{i}]",
                "type",
                "each input needs a string 'name', 'shape', 'datatype' and 'data'",
            )
        )
        return None, None, None
    name = tensor["name"]
    extra = [] if tensor.keys() <= _INPUT_KEYS else sorted(set(tensor) - _INPUT_KEYS)
    if extra or name not in dtypes:
        detail = (
            f"unknown keys {extra}"
            if extra
            else f"not an input of this model; inputs: {list(dtypes)}"
        )
        problems.append(serr.problem(name, "unexpected", detail))
        return None, None, None
    return _tensor_data(name, tensor, dtypes[name], max_rows, chunk, problems)


def _binary_chunk(i: int, tensor: Any, binary: _Binary, problems: list):
    """The input's binary data (binary_data_size bytes), False if it has none, None if bad."""
    params = tensor.get("parameters") if isinstance(tensor, dict) else None
    if params is None:
        return False
    where = tensor.get("name") if isinstance(tensor.get("name"), str) else f"inputs[{i}]"
    if not isinstance(params, dict):
        problems.append(serr.problem(where, "type", "parameters must be an object"))
        return None
    size = params.get(BINARY_SIZE)
    if size is None:
        return False
    if type(size) is not int or size < 0:
        problems.append(serr.problem(where, "type", f"{BINARY_SIZE} must be an integer >= 0"))
        return None
    if "data" in tensor:
        problems.append(serr.problem(where, "unexpected", f"both 'data' and {BINARY_SIZE}"))
    chunk = binary.take(size)
    if chunk is None:
        detail = f"{BINARY_SIZE} {size} runs past the end of the body"
        problems.append(serr.problem(where, "shape", detail))
    return chunk


def _tensor_data(name: str, tensor: dict, dtype: str, max_rows: int, chunk, problems: list):
    """Checks shape, datatype and data length of a named input; returns (name, data, rows)."""
    shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
    if chunk is None:
        return None, None, None
    if not _valid_shape(shape):
        problems.append(
            serr.problem(name, "shape", f"shape must be [n] or [n, 1] with n >= 1, got {shape!r}")
        )
        return None, None, None
    if shape[0] > max_rows:
        raise serr.PayloadTooLarge(
            f"input {name!r} has {shape[0]} rows; the batch limit is {max_rows}"
        )
    if datatype not in ACCEPTS[dtype]:
        detail = f"datatype {datatype!r} does not fit schema type {dtype!r}; use one of "
        problems.append(serr.problem(name, "datatype", detail + str(sorted(ACCEPTS[dtype]))))
        return None, None, None
    if chunk is not False:
        flat = _from_binary(name, datatype, chunk, math.prod(shape), problems)
        return (None, None, None) if flat is None else (name, flat, shape[0])
    flat = _flatten(data)
    if datatype == "BYTES" and isinstance(flat, list) and bytes in set(map(type, flat)):
        flat = _utf8(name, flat, problems)  # gRPC bytes_contents
        if flat is None:
            return None, None, None
    if flat is None or len(flat) != math.prod(shape):
        got = "not an array" if flat is None else f"{len(flat)} values"
        problems.append(
            serr.problem(name, "shape", f"data has {got}; shape {shape} needs {math.prod(shape)}")
        )
        return None, None, None
    return name, flat, shape[0]


def _from_binary(name: str, datatype: str, chunk: memoryview, count: int, problems: list):
    """A binary tensor's `count` elements as JSON-like values (what `"data"` would hold)."""
    if datatype == "BYTES":
        values = _bytes_elements(chunk)
        if values is None or len(values) != count:
            got = "malformed length prefixes" if values is None else f"{len(values)} elements"
            detail = f"binary BYTES data has {got}; shape needs {count}"
            problems.append(serr.problem(name, "shape", detail))
            return None
        return _utf8(name, values, problems)
    dtype = NUMPY[datatype]
    if len(chunk) != count * dtype.itemsize:
        detail = f"{BINARY_SIZE} {len(chunk)} does not hold {count} {datatype} values"
        problems.append(serr.problem(name, "shape", f"{detail} ({count * dtype.itemsize} bytes)"))
        return None
    arr = np.frombuffer(chunk, dtype)
    values = arr.tolist()
    if arr.dtype.kind == "f" and np.isnan(arr).any():  # binary has no null: NaN stands for it
        values = [None if v != v else v for v in values]
    return values


def _bytes_elements(chunk: memoryview) -> list[bytes] | None:
    """BYTES elements, each a 4-byte little-endian length then the bytes; None if malformed."""
    out, offset, end = [], 0, len(chunk)
    while offset < end:
        if offset + 4 > end:
            return None
        (size,) = _LENGTH.unpack_from(chunk, offset)
        offset += 4
        if offset + size > end:
            return None
        out.append(bytes(chunk[offset : offset + size]))
        offset += size
    return out


def _utf8(name: str, values: list, problems: list) -> list | None:
    """BYTES elements as text (the schema's strings and datetimes); invalid UTF-8 is a problem."""
    try:
        return [v.decode() if isinstance(v, bytes) else v for v in values]
    except UnicodeDecodeError as e:
        problems.append(serr.problem(name, "type", f"BYTES element is not UTF-8 text: {e}"))
        return None


def _valid_shape(shape: Any) -> bool:
    return (
        isinstance(shape, list)
        and len(shape) in (1, 2)
        and set(map(type, shape)) == {int}
        and shape[0] >= 1
        and (len(shape) == 1 or shape[1] == 1)
    )


def _flatten(data: Any) -> list | None:
    """Row-major data may arrive flat or nested one level ([[v], [v]]); both mean the same."""
    if not isinstance(data, list):
        return None
    if data and type(data[0]) is list:
        if set(map(type, data)) != {list}:
            return None
        return list(itertools.chain.from_iterable(data))
    return data


def datatype(arr: np.ndarray) -> str:
    """The V2 datatype name of a numpy array."""
    kind, size = arr.dtype.kind, arr.dtype.itemsize * 8
    if kind == "b":
        return "BOOL"
    if kind in "iuf":
        return {"i": "INT", "u": "UINT", "f": "FP"}[kind] + str(size)
    return "BYTES"


def response(result: dataplane.InferResult, request_id: str) -> dict:
    """The V2 answer as JSON, with the outputs the request asked for (all by default)."""
    return _answer(result, request_id, frozenset())[0]


def binary_response(
    result: dataplane.InferResult, request_id: str, binary: frozenset
) -> tuple[dict, list[bytes]]:
    """The V2 answer with the outputs named in `binary` as raw bytes: (JSON header, chunks).

    The HTTP body is the JSON header followed by the chunks, in output order.
    """
    return _answer(result, request_id, binary)


def raw_tensor(arr: np.ndarray, datatype_name: str) -> bytes:
    """A tensor's binary form: little-endian, row-major; BYTES elements length-prefixed."""
    if datatype_name == "BYTES":
        parts = []
        for value in arr.ravel().tolist():
            data = value if isinstance(value, bytes) else str(value).encode()
            parts += (_LENGTH.pack(len(data)), data)
        return b"".join(parts)
    return np.ascontiguousarray(arr, NUMPY[datatype_name]).tobytes()


def _answer(result: dataplane.InferResult, request_id: str, binary: frozenset):
    served, pred = result.model, result.prediction
    tensors = []
    if model.PREDICT in result.outputs:
        tensors.append((model.PREDICT, [result.n_rows], pred.predict, datatype(pred.predict), {}))
    if model.PREDICT_PROBA in result.outputs and pred.proba is not None:
        proba = np.ascontiguousarray(pred.proba, np.float64)
        params = {"classes": list(served.classes)}
        tensors.append((model.PREDICT_PROBA, list(proba.shape), proba, "FP64", params))
    outputs, chunks = [], []
    for name, shape, arr, kind, params in tensors:
        out = {"name": name, "shape": shape, "datatype": kind}
        if name in binary:
            chunks.append(raw_tensor(arr, kind))
            out["parameters"] = {**params, BINARY_SIZE: len(chunks[-1])}
        else:
            out["data"] = dataplane.jsonable(arr.ravel() if arr.ndim > 1 else arr)
            if params:
                out["parameters"] = params
        outputs.append(out)
    header = {
        "model_name": served.name,
        "model_version": served.version,
        "id": request_id,
        "outputs": outputs,
    }
    return header, chunks


def metadata(served: model.ServedModel) -> dict:
    """GET /v2/models/{name}: inputs from the schema, outputs from the estimator."""
    inputs = [
        {"name": c.name, "datatype": DECLARES[c.dtype], "shape": [-1]}
        for c in served.schema.features
    ]
    kind = datatype(np.asarray(served.classes)) if served.classes is not None else "FP64"
    outputs = [{"name": model.PREDICT, "datatype": kind, "shape": [-1]}]
    if served.has_proba:
        outputs.append(
            {"name": model.PREDICT_PROBA, "datatype": "FP64", "shape": [-1, len(served.classes)]}
        )
    return {
        "name": served.name,
        "versions": [served.version],
        "platform": "sklearn",
        "inputs": inputs,
        "outputs": outputs,
        "parameters": {"task": served.task, "classes": list(served.classes or [])},
    }


def server_metadata() -> dict:
    """GET /v2: the server's name, version and protocol extensions."""
    return {"name": "kfops", "version": __version__, "extensions": list(EXTENSIONS)}
