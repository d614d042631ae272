"""Open Inference Protocol (V2): named input tensors in, named output tensors out.

One input per feature column, shape [n] or [n, 1], datatype compatible with the column's schema
type. Outputs are `predict` and, for classifiers, `predict_proba` (shape [n, classes]); a request
may ask for a subset with `"outputs": [{"name": ...}]`.
"""

from __future__ import annotations

import itertools
import math
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


def parse(body: Any, dtypes: Mapping[str, str], outputs: tuple[str, ...], max_rows: int):
    """Turns a V2 body into named columns and the outputs asked for.

    `dtypes` maps each input name to its schema type (`Validator.dtypes`, built once per model).

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
    wanted = _outputs(body.get("outputs"), outputs, problems)
    columns, rows = _columns(inputs, dtypes, max_rows, problems)
    if len(rows) != 1:
        raise serr.InvalidInput(problems)
    return dataplane.InferRequest(
        columns,
        rows.pop(),
        model.PREDICT_PROBA in wanted,
        request_id or "",
        wanted,
        tuple(problems),
    )


def _columns(inputs: list, dtypes: dict, max_rows: int, problems: list) -> tuple[dict, set]:
    """Named flat columns from the tensors that are well-formed, and their row counts."""
    columns, rows = {}, set()
    for i, tensor in enumerate(inputs):
        name, data, n = _tensor(i, tensor, dtypes, max_rows, problems)
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


def _outputs(requested: Any, offered: tuple[str, ...], problems: list) -> tuple[str, ...]:
    if requested is None:
        return offered
    names = (
        [o.get("name") if isinstance(o, dict) else None for o in requested]
        if isinstance(requested, list)
        else [None]
    )
    unknown = [n for n in names if n not in offered]
    if unknown or not names:
        problems.append(
            serr.problem(
                "outputs",
                "unexpected",
                f"unknown outputs {unknown}; this model offers {list(offered)}",
            )
        )
    return tuple(n for n in offered if n in names)


def _tensor(i: int, tensor: Any, dtypes: dict, max_rows: int, problems: list):
    """Checks one input tensor; returns (name, flat data, rows) or (None, None, None)."""
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
    return _tensor_data(name, tensor, dtypes[name], max_rows, problems)


def _tensor_data(name: str, tensor: dict, dtype: str, max_rows: int, problems: list):
    """Checks shape, datatype and data length of a named input; returns (name, data, rows)."""
    shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
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
    flat = _flatten(data)
    if flat is None or len(flat) != math.prod(shape):
        got = "not an array" if flat is None else f"{len(flat)} values"
        problems.append(
            serr.problem(name, "shape", f"data has {got}; shape {shape} needs {math.prod(shape)}")
        )
        return None, None, None
    return name, flat, shape[0]


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
    """The V2 answer with the outputs the request asked for (all by default)."""
    served, pred = result.model, result.prediction
    outputs = []
    if model.PREDICT in result.outputs:
        outputs.append(
            {
                "name": model.PREDICT,
                "shape": [result.n_rows],
                "datatype": datatype(pred.predict),
                "data": dataplane.jsonable(pred.predict),
            }
        )
    if model.PREDICT_PROBA in result.outputs and pred.proba is not None:
        outputs.append(
            {
                "name": model.PREDICT_PROBA,
                "shape": list(pred.proba.shape),
                "datatype": "FP64",
                "data": dataplane.jsonable(np.ascontiguousarray(pred.proba, np.float64).ravel()),
                "parameters": {"classes": list(served.classes)},
            }
        )
    return {
        "model_name": served.name,
        "model_version": served.version,
        "id": request_id,
        "outputs": outputs,
    }


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
    return {"name": "kfops", "version": __version__, "extensions": ["model_repository"]}
