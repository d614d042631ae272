"""KServe V1 protocol: `{"instances": [...]}` in, `{"predictions": [...]}` out.

Instances are objects (column -> value) or lists of values in schema order. Probabilities are
returned when the request sets `"parameters": {"probabilities": true}`. Fields the server was
told to pass through (`--passthrough id`) come back as `"passthrough": {"id": [...]}`, one value
per prediction: KServe's V1 answer is an object, so a client can match answers to its records
by its own ids without a key the protocol does not define replacing `predictions`.
"""

from __future__ import annotations

import operator
from typing import Any

from kfops.serving import dataplane, model, validation
from kfops.serving import errors as serr

_KEYS = frozenset({"instances", "parameters"})


def parse(
    body: Any, features: list[str], max_rows: int, request_id: str = "", route_key: str = ""
) -> dataplane.InferRequest:
    """Turns a V1 body into named columns (the request id and canary key go in as given).

    Raises:
        MalformedRequest: the body is not a JSON object.
        PayloadTooLarge: more than `max_rows` instances.
        InvalidInput: unknown keys, missing/empty instances, mixed or mis-sized instances.
    """
    if not isinstance(body, dict):
        raise serr.MalformedRequest('a V1 body must be a JSON object: {"instances": [...]}')
    problems = [
        serr.problem(None, "unexpected", f"unknown key {k!r}; allowed: {sorted(_KEYS)}")
        for k in body
        if k not in _KEYS
    ]
    want_proba = _want_proba(body.get("parameters"), problems)
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances:
        detail = (
            "required" if instances is None else "must be a non-empty array of objects or arrays"
        )
        problems.append(
            serr.problem("instances", "missing" if instances is None else "shape", detail)
        )
        raise serr.InvalidInput(problems)
    if len(instances) > max_rows:
        raise serr.PayloadTooLarge(
            f"{len(instances)} instances exceed the batch limit of {max_rows}"
        )
    if isinstance(instances[0], dict):
        columns = _from_objects(instances, features, problems)
    else:
        columns = _from_lists(instances, features, problems)
    if not columns:
        raise serr.InvalidInput(problems)
    return dataplane.InferRequest(
        columns,
        len(instances),
        want_proba,
        request_id=request_id,
        problems=tuple(problems),
        route_key=route_key,
    )


def _want_proba(params: Any, problems: list) -> bool:
    if params is None:
        return False
    if not isinstance(params, dict) or not isinstance(params.get("probabilities", False), bool):
        problems.append(
            serr.problem("parameters", "type", 'expected {"probabilities": true|false}')
        )
        return False
    return params.get("probabilities", False)


def _from_objects(instances: list, features: list[str], problems: list) -> dict[str, list]:
    if set(map(type, instances)) != {dict}:
        rows = [i for i, x in enumerate(instances) if not isinstance(x, dict)]
        problems.append(
            serr.problem(
                "instances", "type", "every instance must be an object like the first one", rows
            )
        )
        return {}
    width = len(features)
    if width > 1 and set(map(len, instances)) == {width}:
        # The usual request: each instance holds exactly the schema's keys. One C-level getter
        # per instance and one transpose, instead of a dict lookup per cell; a KeyError means
        # some key is not a feature (the count matched), which the general path below names.
        try:
            rows = list(map(operator.itemgetter(*features), instances))
        except KeyError:
            pass
        else:
            return dict(zip(features, map(list, zip(*rows, strict=True)), strict=True))
    missing = validation.MISSING
    # Keys outside the schema become columns too, so the validator names them with their rows.
    extra = sorted(set().union(*instances).difference(features), key=str)
    return {name: [x.get(name, missing) for x in instances] for name in [*features, *extra]}


def _from_lists(instances: list, features: list[str], problems: list) -> dict[str, list]:
    if set(map(type, instances)) != {list}:
        rows = [i for i, x in enumerate(instances) if not isinstance(x, list)]
        problems.append(
            serr.problem(
                "instances",
                "type",
                "every instance must be an object (column -> value) or an array in schema order",
                rows,
            )
        )
        return {}
    width = len(features)
    if set(map(len, instances)) != {width}:
        rows = [i for i, x in enumerate(instances) if len(x) != width]
        problems.append(
            serr.problem(
                "instances",
                "shape",
                f"each array instance needs {width} values in schema order {features}",
                rows,
            )
        )
        return {}
    return dict(zip(features, map(list, zip(*instances, strict=True)), strict=True))


def response(result: dataplane.InferResult) -> dict:
    """The V1 answer: predictions, plus probabilities and classes when they were asked for."""
    served = result.model
    body = {
        "predictions": dataplane.jsonable(result.prediction.predict),
        "model_name": served.name,
        "model_version": served.version,
    }
    if result.want_proba and result.prediction.proba is not None:
        body["probabilities"] = dataplane.jsonable(result.prediction.proba)
        body["classes"] = list(served.classes)
    if result.passthrough:  # the fields `--passthrough` named, as sent, row for row
        body["passthrough"] = dict(result.passthrough)
    return body


def model_status(served: model.ServedModel) -> dict:
    """GET /v1/models/{name}: KServe's V1 readiness answer."""
    return {"name": served.name, "ready": True, "version": served.version}
