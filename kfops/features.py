"""Declarative derived features, computed inside the fitted model so training and serving agree.

A derived feature is a name, an operation and its raw input columns. It is declared as a
one-line expression (CLI `--feature`) or as the JSON object the pipeline parameter
`derived_features` carries; both parse to the same `Feature`:

    tenure_per_charge = tenure_months / monthly_charges      {"name": ..., "op": "ratio",
                                                              "inputs": ["tenure_months", ...]}
    charge_gap = total_charges - monthly_charges             difference
    usage = calls * minutes                                  product
    signup_month = month(signup_at)                          year month day weekday hour
    age_days = days_since(signup_at, "2026-01-01")           since: a fixed ISO date
    gap_days = days_between(signup_at, last_seen_at)         end minus start, in days
    log_charges = log1p(total_charges)                       log1p
    capped = clip(total_charges, 0, 5000)                    lower/upper (null: no bound)
    tenure_band = bucket(tenure_months, [12, 24, 48])        edges: index of the bucket
    name_len = length(name)                                  string length
    is_gmail = contains(email, "@gmail.")                    1.0 / 0.0

Every derived value is a float. Missing policy, stated once: a missing input, a division by
zero and any non-finite result (log1p of -1 or less, an overflow) give a missing value (NaN),
which the model's preprocessing then treats like any other missing number. Datetimes are read as
UTC (a naive timestamp counts as UTC, as the server parses request strings); "now" is not
allowed as a reference, since it would differ between training and serving.

The grammar is parsed by a tokenizer here, never by `eval`. `DerivedFeatures` is the
scikit-learn transformer that runs first in the fitted Pipeline; it pickles with the model as
`kfops.features.DerivedFeatures` and is defined in kfops.features_step, loaded on first use, so
that parsing and checking specs (the push step, `kfops run`) import no scikit-learn. `compute`
is the one kernel both it and the serving fast path call, so the two give the same numbers by
construction.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kfops import errors, schema

if TYPE_CHECKING:
    from kfops.features_step import DerivedFeatures

DATE_PARTS = ("year", "month", "day", "weekday", "hour")
BINARY = {"/": "ratio", "-": "difference", "*": "product"}
# op -> (input logical types, parameter names)
OPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    **{p: (("datetime",), ()) for p in DATE_PARTS},
    "days_since": (("datetime",), ("since",)),
    "days_between": (("datetime", "datetime"), ()),
    "ratio": (("number", "number"), ()),
    "difference": (("number", "number"), ()),
    "product": (("number", "number"), ()),
    "log1p": (("number",), ()),
    "clip": (("number",), ("lower", "upper")),
    "bucket": (("number",), ("edges",)),
    "length": (("string",), ()),
    "contains": (("string",), ("substring",)),
}
_KINDS = {"number": ("int", "float"), "datetime": ("datetime",), "string": ("string",)}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(
    r"""\s*(?:(?P<number>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(?P<string>"[^"]*"|'[^']*')"""
    r"""|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<punct>[=()\[\],/*-]))"""
)
_NS_PER_DAY = 86_400 * 10**9
_NS_PER_HOUR = 3_600 * 10**9


@dataclasses.dataclass(frozen=True)
class Feature:
    """One derived feature: `name = op(inputs, params)`."""

    name: str
    op: str
    inputs: tuple[str, ...]
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, key: str) -> Any:
        """One parameter's value (None when not given)."""
        return dict(self.params).get(key)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the pipeline parameter carries."""
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in self.params}
        return {"name": self.name, "op": self.op, "inputs": list(self.inputs), **params}


def parse(spec: str | Mapping[str, Any] | Feature) -> Feature:
    """A feature from an expression (`name = expr`) or its JSON object, checked for form.

    Raises:
        ConfigError: one line naming the feature (or the text) and what is wrong.
    """
    if isinstance(spec, Feature):
        return spec
    if isinstance(spec, str):
        return _from_dict(_parse_expression(spec), spec)
    if isinstance(spec, Mapping):
        return _from_dict(dict(spec), json.dumps(spec, default=str))
    raise errors.ConfigError(f"derived feature must be an expression or an object, got {spec!r}")


def parse_all(specs: Sequence[str | Mapping[str, Any]]) -> list[Feature]:
    """Every feature, with names unique.

    Raises:
        ConfigError: a malformed spec or a name given twice.
    """
    if isinstance(specs, str | Mapping):
        specs = [specs]
    out = [parse(s) for s in specs]
    seen: set[str] = set()
    for f in out:
        if f.name in seen:
            raise errors.ConfigError(f"derived feature {f.name!r}: declared more than once")
        seen.add(f.name)
    return out


def specs(given: Sequence[str | Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Every feature in the JSON form the model records: the one parse of user specs.

    TrainConfig reads the pipeline parameter through it, and `kfops run` calls it on the same
    value before the run starts, so a bad spec is the same one line however it was given.

    Raises:
        ConfigError: a malformed spec or a name given twice.
    """
    return [f.to_dict() for f in parse_all(list(given or ()))]


def load_file(path: str) -> list[dict[str, Any] | str]:
    """Specs from a JSON or YAML file: a list of objects/expressions, or {name: expression}.

    Raises:
        ConfigError: unreadable, not JSON/YAML, or not a list or mapping.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise errors.ConfigError(f"cannot read features file {path}: {e.strerror}") from e
    try:
        if path.endswith((".yaml", ".yml")):
            import yaml  # noqa: PLC0415 (only spec files need it)

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # noqa: BLE001 (json and yaml raise different errors)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise errors.ConfigError(f"features file {path} does not parse: {first}") from e
    if isinstance(data, Mapping):
        return [f"{k} = {v}" if isinstance(v, str) else {"name": k, **v} for k, v in data.items()]
    if not isinstance(data, list):
        raise errors.ConfigError(f"features file {path}: expected a list or a mapping of features")
    return data


def check(
    features: Sequence[Feature], types: Mapping[str, str], raw_columns: Sequence[str]
) -> None:
    """Features against the data: inputs exist with the right type, names clash with nothing.

    Args:
        features: parsed features.
        types: raw column -> logical type (schema dtype).
        raw_columns: every raw column name (a derived name may not reuse one).

    Raises:
        ConfigError: one line naming the feature and the problem.
    """
    raw = set(raw_columns)
    for f in features:
        if f.name in raw:
            raise errors.ConfigError(
                f"derived feature {f.name!r}: name clashes with a raw column; choose another"
            )
        kinds, _ = OPS[f.op]
        for column, kind in zip(f.inputs, kinds, strict=True):
            if column not in types:
                what = "not a feature column" if column in raw else "unknown column"
                raise errors.ConfigError(
                    f"derived feature {f.name!r}: {what} {column!r}; "
                    f"feature columns: {errors.preview(sorted(types), limit=12)}"
                )
            if types[column] not in _KINDS[kind]:
                raise errors.ConfigError(
                    f"derived feature {f.name!r}: {f.op} needs a {kind} column, "
                    f"{column!r} is {types[column]}"
                )


# The trained model's metadata key holding its feature specs (kfops.train TrainResult.metadata),
# read by the push and infra-validate components through `served_schema`.
METADATA_KEY = "derived_features"


def served_schema(data_schema: schema.Schema, model_metadata: Mapping[str, Any]) -> schema.Schema:
    """`model_schema` for a trained model, whose derived features are in its metadata."""
    return model_schema(data_schema, model_metadata.get(METADATA_KEY, []))


def model_schema(data_schema: schema.Schema, specs: Sequence[Any]) -> schema.Schema:
    """The schema with every raw input of a derived feature as role "feature".

    Inference gives datetime columns role "ignore" (a raw timestamp does not generalise); a
    derived feature makes such a column an input the server must receive, so the schema
    registered with the model (and served) lists it. Other roles are left alone.
    """
    used = {c for f in parse_all(list(specs)) for c in f.inputs}
    columns = tuple(
        dataclasses.replace(c, role="feature") if c.name in used and c.role == "ignore" else c
        for c in data_schema.columns
    )
    return dataclasses.replace(data_schema, columns=columns)


def compute(feature: Feature, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """The feature's float64 values from its input columns (numpy arrays of any dtype)."""
    op, args = feature.op, [np.asarray(columns[n]) for n in feature.inputs]
    with np.errstate(all="ignore"):
        if op in DATE_PARTS or op in ("days_since", "days_between"):
            out = _date_feature(feature, args)
        elif op in ("length", "contains"):
            out = _string_feature(feature, args[0])
        else:
            out = _number_feature(feature, [_floats(a) for a in args])
    out[~np.isfinite(out)] = np.nan
    return out


def __getattr__(name: str) -> Any:
    """`DerivedFeatures` on first use (PEP 562): scikit-learn loads with it, not with the module."""
    if name == "DerivedFeatures":
        from kfops.features_step import DerivedFeatures  # noqa: PLC0415

        return DerivedFeatures
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def derived_step(model: Any) -> DerivedFeatures | None:
    """The fitted DerivedFeatures step of a Pipeline, if it has one."""
    steps = getattr(model, "steps", ())
    if not steps:  # not a Pipeline: no scikit-learn import just to say so
        return None
    from kfops.features_step import DerivedFeatures  # noqa: PLC0415

    for _, step in steps:
        if isinstance(step, DerivedFeatures):
            return step
    return None


def derived_inputs(model: Any) -> dict[str, tuple[str, ...]]:
    """Derived feature name -> the raw columns it is computed from ({} without a derive step)."""
    step = derived_step(model)
    return {f.name: f.inputs for f in step.features_} if step is not None else {}


def _from_dict(data: dict[str, Any], text: str) -> Feature:
    name = data.pop("name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise errors.ConfigError(f"derived feature {text!r}: name must be an identifier")
    op = data.pop("op", None)
    if op not in OPS:
        raise errors.ConfigError(
            f"derived feature {name!r}: unknown operation {op!r}; known: {sorted(OPS)}"
        )
    inputs = data.pop("inputs", None)
    kinds, keys = OPS[op]
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list | tuple) or not all(isinstance(c, str) for c in inputs):
        raise errors.ConfigError(f"derived feature {name!r}: inputs must be a list of columns")
    if len(inputs) != len(kinds):
        raise errors.ConfigError(
            f"derived feature {name!r}: {op} takes {len(kinds)} column(s), got {len(inputs)}"
        )
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise errors.ConfigError(f"derived feature {name!r}: {op} has no parameter {unknown[0]!r}")
    params = tuple((k, _param(name, op, k, data.get(k))) for k in keys)
    if op == "clip" and None not in (params[0][1], params[1][1]) and params[0][1] > params[1][1]:
        raise errors.ConfigError(f"derived feature {name!r}: clip lower is above upper")
    return Feature(name, op, tuple(inputs), params)


def _param(name: str, op: str, key: str, value: Any) -> Any:
    where = f"derived feature {name!r}: {op} {key}"
    if key in ("lower", "upper"):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise errors.ConfigError(f"{where} must be a number or null, got {value!r}")
        return float(value)
    if key == "edges":
        ok = (
            isinstance(value, list | tuple)
            and value
            and all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in value
            )
        )
        if not ok or any(b <= a for a, b in zip(value, value[1:], strict=False)):
            raise errors.ConfigError(
                f"{where} must be a non-empty list of strictly increasing numbers, got {value!r}"
            )
        return tuple(float(v) for v in value)
    if key == "substring":
        if not isinstance(value, str) or not value:
            raise errors.ConfigError(f"{where} must be a non-empty string, got {value!r}")
        return value
    # since
    if not isinstance(value, str) or value.strip().lower() in ("now", "today"):
        raise errors.ConfigError(
            f'{where} must be a fixed ISO date such as "2026-01-01", got {value!r} '
            "(a moving 'now' would differ between training and serving)"
        )
    try:
        stamp = pd.Timestamp(value)
    except ValueError as e:
        raise errors.ConfigError(f"{where} is not an ISO date: {value!r}") from e
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.isoformat()


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise errors.ConfigError(f"derived feature {text!r}: cannot read {text[pos:]!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _parse_expression(text: str) -> dict[str, Any]:
    """`name = a / b` or `name = fn(arg, ...)` as the JSON form; args are columns or literals."""
    toks = _tokens(text)
    if len(toks) < 3 or toks[0][0] != "name" or toks[1] != ("punct", "="):
        raise errors.ConfigError(
            f"derived feature {text!r}: expected 'name = expression', e.g. 'r = a / b'"
        )
    name, rest = toks[0][1], toks[2:]
    if len(rest) == 3 and rest[0][0] == rest[2][0] == "name" and rest[1][1] in BINARY:
        return {"name": name, "op": BINARY[rest[1][1]], "inputs": [rest[0][1], rest[2][1]]}
    if (
        len(rest) < 3
        or rest[0][0] != "name"
        or rest[1] != ("punct", "(")
        or rest[-1]
        != (
            "punct",
            ")",
        )
    ):
        raise errors.ConfigError(
            f"derived feature {name!r}: expected 'a / b', 'a - b', 'a * b' or fn(args), "
            f"fn one of {sorted(OPS)}"
        )
    op, args = rest[0][1], _arguments(name, rest[2:-1])
    if op not in OPS:
        raise errors.ConfigError(
            f"derived feature {name!r}: unknown function {op!r}; known: {sorted(OPS)}"
        )
    kinds, keys = OPS[op]
    columns, literals = args[: len(kinds)], args[len(kinds) :]
    ok = len(args) == len(kinds) + len(keys)
    if (
        not ok
        or not all(isinstance(c, _Column) for c in columns)
        or any(isinstance(v, _Column) for v in literals)
    ):
        then = f" then {', '.join(keys)}" if keys else ""
        raise errors.ConfigError(
            f"derived feature {name!r}: {op} takes {len(kinds)} column(s){then}, "
            f"got {len(args)} argument(s)"
        )
    params = dict(zip(keys, literals, strict=True))
    return {"name": name, "op": op, "inputs": [str(c) for c in columns], **params}


class _Column(str):
    """A bare name in an argument list: a column, not a literal."""


def _arguments(name: str, toks: list[tuple[str, str]]) -> list[Any]:
    args: list[Any] = []
    i = 0
    while i < len(toks):
        kind, value = toks[i]
        if kind == "name":
            args.append(None if value == "null" else _Column(value))
        elif kind == "number":
            args.append(float(value) if any(c in value for c in ".eE") else int(value))
        elif kind == "string":
            args.append(value[1:-1])
        elif value == "[":
            end = next((j for j in range(i, len(toks)) if toks[j][1] == "]"), None)
            items = toks[i + 1 : end] if end is not None else []
            numbers = [t for t in items if t[1] != ","]
            if end is None or not all(t[0] == "number" for t in numbers):
                raise errors.ConfigError(f"derived feature {name!r}: a list holds numbers only")
            args.append([float(t[1]) for t in numbers])
            i = end
        else:
            raise errors.ConfigError(f"derived feature {name!r}: unexpected {value!r}")
        i += 1
        if i < len(toks):
            if toks[i] != ("punct", ","):
                raise errors.ConfigError(
                    f"derived feature {name!r}: expected ',' between arguments"
                )
            i += 1
    return args


def _floats(a: np.ndarray) -> np.ndarray:
    """float64 values, every missing marker (None, NaN, pd.NA) as NaN."""
    if a.dtype.kind in "biuf":
        return a.astype(np.float64)
    missing = pd.isna(a)
    out = np.full(a.shape, np.nan)
    out[~missing] = a[~missing].astype(np.float64)
    return out


def _number_feature(f: Feature, args: list[np.ndarray]) -> np.ndarray:
    x = args[0]
    if f.op == "ratio":
        y = args[1]
        return np.where(y == 0, np.nan, x / np.where(y == 0, 1.0, y))
    if f.op == "difference":
        return x - args[1]
    if f.op == "product":
        return x * args[1]
    if f.op == "log1p":
        return np.log1p(x)
    if f.op == "clip":
        lo, hi = f.param("lower"), f.param("upper")
        return np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    # bucket: how many edges are <= x (0 .. len(edges)); a missing x stays missing
    edges = np.asarray(f.param("edges"), np.float64)
    out = np.searchsorted(edges, x, side="right").astype(np.float64)
    out[np.isnan(x)] = np.nan
    return out


def _utc_nanos(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int64 nanoseconds since the epoch in UTC, missing mask); naive values count as UTC."""
    if a.dtype.kind == "O":
        values = a.reshape(-1).tolist()
        kinds = set(map(type, values))
        if kinds and kinds <= {pd.Timestamp, type(pd.NaT)}:
            # What the server's validator hands over. Timestamp.value is UTC epoch ns (a naive
            # one's wall time read as UTC, as to_datetime(utc=True) reads it); ~30x faster.
            missing = np.fromiter((v is pd.NaT for v in values), bool, len(values))
            ns = np.fromiter((0 if v is pd.NaT else v.value for v in values), np.int64, len(values))
            return ns, missing
    stamps = pd.DatetimeIndex(
        pd.to_datetime(pd.Series(a, copy=False), utc=True, errors="coerce", format="ISO8601")
    )
    return stamps.asi8.copy(), np.asarray(stamps.isna())


def _date_feature(f: Feature, args: list[np.ndarray]) -> np.ndarray:
    ns, missing = _utc_nanos(args[0])
    if f.op == "days_between":
        end, end_missing = _utc_nanos(args[1])
        out, missing = (end - ns) / _NS_PER_DAY, missing | end_missing
    elif f.op == "days_since":
        since = pd.Timestamp(f.param("since")).value
        out = (ns - since) / _NS_PER_DAY
    elif f.op == "hour":
        out = ((ns // _NS_PER_HOUR) % 24).astype(np.float64)
    elif f.op == "weekday":  # Monday = 0; 1970-01-01 was a Thursday (3)
        out = ((ns // _NS_PER_DAY + 3) % 7).astype(np.float64)
    else:
        stamps = ns.astype("datetime64[ns]")
        months = stamps.astype("datetime64[M]")
        if f.op == "year":
            out = (stamps.astype("datetime64[Y]").astype(np.int64) + 1970).astype(np.float64)
        elif f.op == "month":
            out = (months.astype(np.int64) % 12 + 1).astype(np.float64)
        else:
            out = ((stamps - months).astype("timedelta64[D]").astype(np.int64) + 1).astype(
                np.float64
            )
    out = np.asarray(out, np.float64)
    out[missing] = np.nan
    return out


def _string_feature(f: Feature, a: np.ndarray) -> np.ndarray:
    """The length and contains ops as Arrow kernels over a column; code points, like len().

    Missing markers (None, NaN, pd.NA) give NaN; a value that is not text counts as its str().
    """
    flat = a.reshape(-1)
    try:
        text = pa.array(flat, pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeError):
        # numbers among the text, or a lone surrogate (JSON "\\ud800") UTF-8 cannot hold
        values = pd.Series(flat, dtype=object)
        texts = values.astype(str).where(values.notna(), None)
        if f.op == "length":
            return texts.str.len().to_numpy(np.float64, na_value=np.nan)
        found = texts.str.contains(f.param("substring"), regex=False)
        return found.astype(float).to_numpy(np.float64, na_value=np.nan)
    if f.op == "length":
        out = pc.utf8_length(text)
    else:
        out = pc.match_substring(text, f.param("substring"))
    return pc.cast(out, pa.float64()).to_numpy(zero_copy_only=False, writable=True)
