"""The on-store layout of run records, shared by the writer (recorder) and the readers (index).

One object per fact, so concurrent writers never touch the same key and a crash can leave at most
a missing object, never a half-written shared index (listing the `runs/` prefix *is* the index):

    runs/<run_id>/run.json            header: pipeline, experiment, parameters, versions, image
    runs/<run_id>/steps/<step>.json   one step: status, times, parameters, inputs, outputs, metrics
    runs/<run_id>/end.json            the run's outcome: status, blessed, reasons, model
    runs/<run_id>/reports/<name>.html a step's HTML report, so every store (and `kfops ui`) has it
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from kfops import dataio, errors

PREFIX = "runs/"
HEADER = "run.json"
END = "end.json"
STEPS = "steps/"
REPORTS = "reports/"
# A key segment that is safe on a filesystem and in S3, and readable in a table.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# Parameter names whose values are never written, whatever the caller passes.
_SECRET_NAME = re.compile(r"secret|password|passwd|token|access_key|credential", re.IGNORECASE)
REDACTED = "<redacted>"

END_STATUSES = ("succeeded", "failed")


def check_name(kind: str, value: str) -> str:
    """Returns `value` if it is a valid run id or step name, as it becomes part of a store key.

    Raises:
        ConfigError: empty, too long, or characters outside letters, digits, '.', '_' and '-'.
    """
    if not isinstance(value, str) or not _NAME.match(value):
        raise errors.ConfigError(
            f"invalid {kind} {value!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def run_prefix(run_id: str) -> str:
    """`runs/<run_id>/`."""
    return f"{PREFIX}{run_id}/"


def header_key(run_id: str) -> str:
    """Key of a run's header."""
    return f"{run_prefix(run_id)}{HEADER}"


def end_key(run_id: str) -> str:
    """Key of a run's outcome."""
    return f"{run_prefix(run_id)}{END}"


def step_key(run_id: str, step: str) -> str:
    """Key of one step's record."""
    return f"{run_prefix(run_id)}{STEPS}{step}.json"


def report_key(run_id: str, name: str) -> str:
    """Key of one HTML report of a run (`validation`, `evaluation`, ...)."""
    return f"{run_prefix(run_id)}{REPORTS}{name}.html"


def split_key(key: str) -> tuple[str, str] | None:
    """Splits `runs/<id>/<rest>` into (id, rest); None for keys outside the layout."""
    if not key.startswith(PREFIX):
        return None
    run_id, sep, rest = key[len(PREFIX) :].partition("/")
    return (run_id, rest) if sep and run_id and rest else None


def now() -> str:
    """UTC now, ISO 8601 with milliseconds (sortable as text)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def encode(record: Mapping[str, Any]) -> bytes:
    """Canonical JSON (sorted keys) so the same facts give the same bytes."""
    return json.dumps(record, indent=2, sort_keys=True, default=_default).encode() + b"\n"


def decode(data: bytes) -> dict[str, Any] | None:
    """A record, or None if the bytes are not a JSON object (never raises: readers skip it)."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def clean_parameters(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """JSON-ready parameters with secret-looking names redacted.

    Credentials reach steps through the environment, never as parameters; redacting here is the
    second line of defence, so a record can be shared without leaking a key.
    """
    out: dict[str, Any] = {}
    for name, value in (parameters or {}).items():
        out[str(name)] = REDACTED if _SECRET_NAME.search(str(name)) else _jsonable(value)
    return out


def metric_value(name: str, value: Any) -> float | None:
    """A metric as a float; NaN and infinities become None (JSON has no such numbers).

    Raises:
        ConfigError: the value is not a number.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) and not hasattr(value, "item"):
        raise errors.ConfigError(f"metric {name!r} must be a number, got {type(value).__name__}")
    number = float(value)
    return number if math.isfinite(number) else None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_default))


def _default(obj: Any) -> Any:
    """`dataio._json_default` (numpy, timestamps, sets), but str() for anything else.

    A record must never fail to be written because a parameter value is exotic.
    """
    try:
        return dataio._json_default(obj)
    except TypeError:
        return str(obj)
