"""Simulated traffic: a bounded stream of (optionally drifted) builtin:churn rows sent to a server.

It exists so a user can watch the monitoring loop work end to end: serve a model, send drifted
requests, run `kfops monitor`, see it decide to retrain. Requests are KServe V1 batches; each gets
an `x-request-id` so the ground-truth labels written alongside (`labels_path`) join the server's
inference log on (kfops_request_id, kfops_row) for quality monitoring.

Only the standard library talks HTTP here, so the command needs no extra dependency.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from kfops import datasets, errors, jsonable, logschema, parameters
from kfops.monitor import window

MAX_ROWS = 1_000_000


@dataclasses.dataclass(frozen=True)
class TrafficConfig:
    """What to send where.

    Attributes:
        url: base URL of a running `kfops serve`, e.g. http://127.0.0.1:8080.
        name: served model name.
        rows: churn rows to send in total (at most MAX_ROWS: the stream is always bounded).
        drift: the churn generator's drift knob (0: reference distribution).
        seed: seeds the rows and the request ids.
        batch_size: rows per request.
        timeout: seconds per request.
    """

    url: str = parameters.field("http://127.0.0.1:8080", "base URL of `kfops serve`")
    name: str = parameters.field("churn", "served model name")
    rows: int = parameters.field(1000, f"rows to send (max {MAX_ROWS})")
    drift: float = parameters.field(0.0, "churn drift knob (0: none, 1: strong)")
    seed: int = parameters.field(0, "seeds the rows and the request ids")
    batch_size: int = parameters.field(50, "rows per request")
    timeout: float = parameters.field(10.0, "seconds per request")

    def __post_init__(self):
        parsed = urllib.parse.urlparse(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise errors.ConfigError(f"url must be http(s)://host:port, got {self.url!r}")
        if not 1 <= self.rows <= MAX_ROWS:
            raise errors.ConfigError(f"rows must be in [1, {MAX_ROWS}], got {self.rows}")
        if not 1 <= self.batch_size <= 10_000:
            raise errors.ConfigError(f"batch_size must be in [1, 10000], got {self.batch_size}")
        if not (math.isfinite(self.drift) and self.drift >= 0):
            raise errors.ConfigError(f"drift must be a finite number >= 0, got {self.drift}")
        errors.check_seed("seed", self.seed)


@dataclasses.dataclass(frozen=True)
class TrafficResult:
    """What happened: rows and requests sent, answered, rejected; the first rejection's reason."""

    requests: int
    rows_sent: int
    rows_accepted: int
    statuses: dict[int, int]
    first_error: str | None
    seconds: float
    labels: pd.DataFrame = dataclasses.field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the labels frame)."""
        out = dataclasses.asdict(self)
        del out["labels"]
        out["statuses"] = {str(k): v for k, v in self.statuses.items()}
        return out


def simulate(cfg: TrafficConfig) -> TrafficResult:
    """Sends `cfg.rows` churn rows in batches and returns the tally plus the accepted rows' labels.

    Raises:
        ConfigError: the server cannot be reached or does not serve `cfg.name`.
    """
    features = model_inputs(cfg)
    frame = datasets.churn(cfg.rows, seed=cfg.seed, drift=cfg.drift)
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise errors.ConfigError(
            f"model {cfg.name!r} needs inputs {missing} that builtin:churn does not have"
        )
    statuses: Counter[int] = Counter()
    accepted, first_error, labels = 0, None, []
    start = time.monotonic()
    for i, lo in enumerate(range(0, cfg.rows, cfg.batch_size)):
        batch = frame.iloc[lo : lo + cfg.batch_size]
        rid = f"sim-{cfg.seed}-{i:07d}"
        status, body = _post(cfg, rid, {"instances": instances(batch, features)})
        statuses[status] += 1
        if status == 200:
            accepted += len(batch)
            labels.append(_labels(batch, rid))
        elif first_error is None:
            first_error = f"HTTP {status}: {body[:500]}"
    return TrafficResult(
        requests=sum(statuses.values()),
        rows_sent=cfg.rows,
        rows_accepted=accepted,
        statuses=dict(sorted(statuses.items())),
        first_error=first_error,
        seconds=round(time.monotonic() - start, 3),
        labels=pd.concat(labels, ignore_index=True) if labels else _labels(frame.iloc[:0], ""),
    )


def model_inputs(cfg: TrafficConfig) -> list[str]:
    """The served model's input names, from its V2 metadata.

    Raises:
        ConfigError: unreachable server, unknown model, or an unexpected answer.
    """
    url = f"{cfg.url.rstrip('/')}/v2/models/{urllib.parse.quote(cfg.name)}"
    try:
        with urllib.request.urlopen(url, timeout=cfg.timeout) as response:  # noqa: S310 (http only)
            meta = json.loads(response.read())
    except urllib.error.HTTPError as e:
        raise errors.ConfigError(f"{url} answered HTTP {e.code}: is {cfg.name!r} served?") from e
    except (urllib.error.URLError, OSError) as e:
        raise errors.ConfigError(
            f"cannot reach {cfg.url}: {getattr(e, 'reason', e)}; start it with `kfops serve`"
        ) from e
    try:
        return [i["name"] for i in meta["inputs"]]
    except (KeyError, TypeError) as e:
        raise errors.ConfigError(f"{url} did not answer V2 model metadata: {meta!r:.200}") from e


def instances(batch: pd.DataFrame, features: list[str]) -> list[dict[str, Any]]:
    """V1 instances: one JSON object per row; missing values as null, dates as ISO text."""
    cols = {}
    for name in features:
        col = batch[name]
        if pd.api.types.is_datetime64_any_dtype(col):
            values = [None if pd.isna(v) else v.isoformat() for v in col]
        else:
            values = [None if _missing(v) else jsonable.plain(v) for v in col.tolist()]
        cols[name] = values
    return [{name: cols[name][i] for name in features} for i in range(len(batch))]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _labels(batch: pd.DataFrame, rid: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            logschema.REQUEST_ID: [rid] * len(batch),
            window.ROW: np.arange(len(batch), dtype="int64"),
            datasets.CHURN_LABEL: batch[datasets.CHURN_LABEL].to_numpy(),
        }
    )


def _post(cfg: TrafficConfig, rid: str, body: dict[str, Any]) -> tuple[int, str]:
    """POSTs one V1 request; returns (status, body text). Connection failures raise ConfigError."""
    url = f"{cfg.url.rstrip('/')}/v1/models/{urllib.parse.quote(cfg.name)}:predict"
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "x-request-id": rid},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=cfg.timeout) as response:  # noqa: S310
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        raise errors.ConfigError(f"lost the server at {cfg.url}: {getattr(e, 'reason', e)}") from e
