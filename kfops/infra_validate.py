"""Infra-validate: serve the candidate exactly as production would, and ask it real questions.

TFX's InfraValidator does this only for TensorFlow; KServe's sklearn runtime fails in the field on
scikit-learn version and pickle mismatches. Here the candidate file goes through the server's own
load path (`DirectorySource` -> `modelio.load_model` -> `build_app`), a real uvicorn server on a
127.0.0.1 ephemeral port answers V1 and V2 smoke requests built from test rows, and the answers
must equal in-process predictions: labels exactly, class probabilities within PROBA_RTOL /
PROBA_ATOL. A failed check is a recorded result with its reason (the
pipeline skips push), not an exception.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from kfops import dataio, errors, modelio, parameters, schema
from kfops.serving import app, model, server, settings, v2
from kfops.serving import errors as serr

JSON_HEADERS = {"content-type": "application/json"}
# Served class probabilities must match in-process predict_proba within this (elementwise:
# |served - expected| <= PROBA_ATOL + PROBA_RTOL * |expected|). JSON carries float64 exactly,
# so this only absorbs the fast path's own verified tolerance (kfops.serving.fastpath.verify).
PROBA_RTOL, PROBA_ATOL = 1e-9, 1e-9
# Smoke rows are the first schema-valid ones among the first max_rows x this many test rows.
SCANNED_PER_ROW = 5


@dataclasses.dataclass(frozen=True)
class InfraConfig:
    """How hard to poke the candidate.

    Attributes:
        name: model name used in the smoke URLs.
        max_rows: at most this many test rows go into the batch requests.
        single_requests: single-row V1 requests timed for the report's latency figures.
        timeout_seconds: per-request timeout.
    """

    name: str = "candidate"
    max_rows: int = parameters.field(20, "at most this many test rows go into batch requests")
    single_requests: int = 20
    timeout_seconds: float = 30.0

    def __post_init__(self):
        if self.max_rows < 1 or self.single_requests < 1 or self.timeout_seconds <= 0:
            raise errors.ConfigError(
                "max_rows and single_requests must be >= 1, timeout_seconds > 0"
            )


@dataclasses.dataclass(frozen=True)
class Check:
    """One smoke check and what happened."""

    name: str
    passed: bool
    detail: str


@dataclasses.dataclass(frozen=True)
class InfraReport:
    """Whether the candidate served correctly; `reasons` lists every failed check."""

    passed: bool
    reasons: tuple[str, ...]
    checks: tuple[Check, ...]
    rows_used: int = 0
    rows_rejected: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the component writes it as the report artifact)."""
        return dataclasses.asdict(self)


def read_sample(path, config: InfraConfig = InfraConfig()) -> pd.DataFrame:  # noqa: B008 (frozen)
    """The test rows infra-validation may use: the first max_rows x SCANNED_PER_ROW of the file.

    The same frame as `dataio.read_frame(path).head(n)` (dtypes included: the file's pandas
    metadata goes with the batch), without decoding the rest of the split: the whole 200k-row
    test split of a 1M-row run took ~0.25 CPU s to read for 100 rows.

    Raises:
        DataError: the file is missing or not Parquet.
    """
    import pyarrow as pa  # noqa: PLC0415 (pandas' own Parquet engine, loaded with it)
    import pyarrow.parquet as pq  # noqa: PLC0415

    with dataio.parquet_errors(path):
        parquet = pq.ParquetFile(path)
        batch = next(parquet.iter_batches(batch_size=config.max_rows * SCANNED_PER_ROW), None)
        table = pa.Table.from_batches([] if batch is None else [batch], schema=parquet.schema_arrow)
    return table.to_pandas()


def infra_validate(
    pipeline: Any,
    spec: schema.Schema,
    sample_rows: pd.DataFrame,
    config: InfraConfig = InfraConfig(),
) -> InfraReport:
    """Saves a fitted pipeline to a model file and validates that file (`infra_validate_file`)."""
    with tempfile.TemporaryDirectory(prefix="kfops-infra-") as tmp:
        path = Path(tmp, model.MODEL_FILE)
        modelio.save_model(pipeline, path)
        return infra_validate_file(path, spec, sample_rows, config)


def infra_validate_file(
    model_path,
    spec: schema.Schema,
    sample_rows: pd.DataFrame,
    config: InfraConfig = InfraConfig(),
    sha256: str | None = None,
) -> InfraReport:
    """Loads a model file the way the server does, serves it, and runs V1 and V2 smoke requests.

    Args:
        model_path: the candidate's joblib file.
        spec: its schema.
        sample_rows: test rows (extra columns such as the label are ignored).
        config: request counts and timeouts.
        sha256: the file's recorded digest; checked before unpickling when given.

    Returns:
        A report: passed only when every check passed; reasons name each failure.
    """
    with tempfile.TemporaryDirectory(prefix="kfops-infra-") as tmp:
        model_dir = Path(tmp)
        Path(model_dir, model.MODEL_FILE).symlink_to(Path(model_path).resolve())
        spec.save(model_dir / model.SCHEMA_FILE)
        if sha256:
            manifest = {"version": "0", "files": {model.MODEL_FILE: {"sha256": sha256}}}
            dataio.write_json(manifest, model_dir / model.MANIFEST_FILE)
        cfg = settings.ServeConfig(name=config.name, port=0, poll_seconds=0, log_sample_rate=0)
        try:
            application = app.build_app(cfg, model.DirectorySource(model_dir))
        except errors.KfopsError as e:
            return _report([Check("load", False, f"the server cannot load the model: {e}")])
        active = application.state.plane.manager.current
        loaded = Check(
            "load", True, f"loaded through the server's load path; {active.model.fast_note}"
        )
        rows, expected, rejected = _smoke_rows(active, sample_rows, config.max_rows)
        if not rows:
            detail = f"none of {rejected} test rows pass the schema; no smoke request to send"
            return _report([loaded, Check("rows", False, detail)], 0, rejected)
        with server.running(application) as url:
            client = _Client(url, config.timeout_seconds)
            checks = _smoke(client, active.model, rows, expected)
            latencies = _latencies(client, active.model.name, rows, config.single_requests)
    p50, p99 = np.percentile(latencies, [50, 99]).round(3).tolist() if latencies else (None, None)
    return _report([loaded, *checks], len(rows), rejected, p50, p99)


def _report(checks: list[Check], rows_used=0, rejected=0, p50=None, p99=None) -> InfraReport:
    reasons = tuple(f"{c.name}: {c.detail}" for c in checks if not c.passed)
    return InfraReport(not reasons, reasons, tuple(checks), rows_used, rejected, p50, p99)


def _smoke_rows(active, frame: pd.DataFrame, limit: int):
    """JSON-ready test rows the schema accepts, and the pipeline's in-process predictions for them.

    The reference predictions come from the original test frame (training dtypes), so a served
    answer that differs reveals skew between the server's input handling and training's.
    """
    names = active.validator.names
    candidates = frame.head(limit * SCANNED_PER_ROW)
    records = orjson.loads(
        orjson.dumps(
            candidates.reindex(columns=names).to_dict("records"),
            option=orjson.OPT_SERIALIZE_NUMPY,
            default=_json_default,
        )
    )
    keep = []
    for i, row in enumerate(records):
        try:
            active.validator.validate({k: [row[k]] for k in names}, 1)
        except serr.InvalidInput:
            continue
        keep.append(i)
        if len(keep) == limit:
            break
    if not keep:
        return [], None, len(records)
    frame = candidates.iloc[keep][names]
    pipe = active.model.pipeline
    proba = np.asarray(pipe.predict_proba(frame)) if active.model.has_proba else None
    expected = Expected(np.asarray(pipe.predict(frame)), proba)
    return [records[i] for i in keep], expected, len(records) - len(keep)


@dataclasses.dataclass(frozen=True)
class Expected:
    """In-process answers for the smoke rows: labels (or values), and probabilities if any."""

    labels: np.ndarray
    proba: np.ndarray | None


def _json_default(obj):
    if obj is pd.NA or obj is pd.NaT:
        return None
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    raise TypeError(type(obj).__name__)


class _Client:
    """A tiny stdlib HTTP client (the image has no httpx): returns (status, JSON body)."""

    def __init__(self, url: str, timeout: float):
        self.url, self.timeout = url, timeout
        # The server is on loopback: an HTTP(S)_PROXY in the pod's environment must not route it.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, path: str, body=None) -> tuple[int, Any]:
        data = orjson.dumps(body) if body is not None else None
        req = urllib.request.Request(self.url + path, data, JSON_HEADERS, method=method)
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                return resp.status, orjson.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, orjson.loads(e.read() or b"null")


def _smoke(
    client: _Client, served: model.ServedModel, rows: list[dict], expected: Expected
) -> list[Check]:
    """Each check runs even when an earlier one failed, so the report lists every failure.

    Classifiers are asked for probabilities too (V1 `parameters`, V2 by default), so a model
    that serves the right labels with wrong probabilities fails.
    """
    names = served.schema.feature_names
    v1_path, v2_root = f"/v1/models/{served.name}:predict", f"/v2/models/{served.name}"
    as_lists = [[r[n] for n in names] for r in rows]
    params = {"parameters": {"probabilities": True}} if expected.proba is not None else {}
    tensors = [
        {
            "name": n,
            "shape": [len(rows)],
            "datatype": v2.DECLARES[served.schema.column(n).dtype],
            "data": [r[n] for r in rows],
        }
        for n in names
    ]
    plan = [
        ("v2_live", lambda: _status(client.call("GET", "/v2/health/live"), 200)),
        ("v2_ready", lambda: _status(client.call("GET", f"{v2_root}/ready"), 200)),
        ("v2_metadata", lambda: _metadata(client.call("GET", v2_root), names)),
        (
            "v1_objects",
            lambda: _same(client.call("POST", v1_path, {"instances": rows, **params}), expected),
        ),
        (
            "v1_lists",
            lambda: _same(
                client.call("POST", v1_path, {"instances": as_lists, **params}), expected
            ),
        ),
        (
            "v2_infer",
            lambda: _same(client.call("POST", f"{v2_root}/infer", {"inputs": tensors}), expected),
        ),
        (
            "rejects_bad_input",
            lambda: _status(client.call("POST", v1_path, {"instances": [{}]}), 400),
        ),
    ]
    return [_check(name, fn) for name, fn in plan]


def _latencies(client: _Client, name: str, rows: list[dict], n: int) -> list[float]:
    """Milliseconds of single-row V1 requests (informational; not a pass/fail rule)."""
    out = []
    for i in range(n):
        start = time.perf_counter()
        status, _ = client.call(
            "POST", f"/v1/models/{name}:predict", {"instances": [rows[i % len(rows)]]}
        )
        if status == 200:
            out.append((time.perf_counter() - start) * 1000)
    return out


def _check(name: str, fn) -> Check:
    try:
        problem = fn()
    except (OSError, ValueError, KeyError, TypeError, StopIteration) as e:  # URLError is an OSError
        return Check(name, False, f"{type(e).__name__}: {e}")
    return Check(name, problem is None, problem or "ok")


def _status(answer, expected: int) -> str | None:
    status, body = answer
    return None if status == expected else f"HTTP {status} (expected {expected}): {body}"


def _metadata(answer, names: list[str]) -> str | None:
    status, body = answer
    if status != 200:
        return f"HTTP {status}: {body}"
    got = [i["name"] for i in body["inputs"]]
    return None if got == names else f"metadata inputs {got} differ from the schema's {names}"


def _same(answer, want: Expected) -> str | None:
    """Served labels and probabilities (V1 or V2 form) equal in-process ones."""
    status, body = answer
    if status != 200:
        return f"HTTP {status}: {body}"
    if "predictions" in body:
        got, proba = body["predictions"], body.get("probabilities")
    else:
        outputs = {o["name"]: o["data"] for o in body["outputs"]}
        got, proba = outputs[model.PREDICT], outputs.get(model.PREDICT_PROBA)
    problem = _same_labels(np.asarray(got), want.labels)
    if problem or want.proba is None:
        return problem
    if proba is None:
        return "the served answer has no class probabilities"
    proba = np.asarray(proba, dtype=float).reshape(-1)
    if proba.size != want.proba.size:
        return f"{proba.size} probabilities for {want.proba.size} expected"
    close = np.isclose(proba, want.proba.reshape(-1), rtol=PROBA_RTOL, atol=PROBA_ATOL)
    if close.all():
        return None
    worst = float(np.max(np.abs(proba - want.proba.reshape(-1))))
    rows = int(np.sum(~close.reshape(want.proba.shape).all(axis=1)))
    return (
        f"{rows} of {len(want.proba)} served probability rows differ from in-process "
        f"(max difference {worst:.3g}; tolerance rtol {PROBA_RTOL:g}, atol {PROBA_ATOL:g})"
    )


def _same_labels(got: np.ndarray, expected: np.ndarray) -> str | None:
    if got.shape != expected.shape:
        return f"{got.size} predictions for {expected.size} rows"
    if expected.dtype.kind in "fc":
        differ = int(np.sum(~np.isclose(got.astype(float), expected, rtol=1e-9, atol=1e-12)))
    else:
        differ = int(np.sum(got.astype(str) != expected.astype(str)))
    return (
        None
        if not differ
        else f"{differ} of {expected.size} served predictions differ from in-process"
    )
