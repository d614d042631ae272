"""Replay any dataset as traffic to a served model, so monitoring can be tried on your own data.

`kfops simulate-traffic` only knows builtin:churn. Replay reads any source ingest reads (CSV,
Parquet, s3://...), sends the columns the served model takes as KServe V1 batches, each with an
`x-request-id` (`replay-<seed>-<batch>`) so labels written alongside join the inference log on
(kfops_request_id, kfops_row), and paces them at `rate` requests per second. `drift` shifts every
numeric feature by that many of its standard deviations: a known, visible drift on any data.
"""

from __future__ import annotations

import dataclasses
import math
import time
import urllib.parse
from collections import Counter

import numpy as np
import pandas as pd

from kfops import config, errors, ingest, logschema, parameters, traffic
from kfops.monitor import window


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    """What to send where, and how fast.

    Attributes:
        url: base URL of a running `kfops serve`.
        name: served model name.
        source: the data to replay (any source `kfops run --source` reads).
        rate: requests per second (0: as fast as the server answers).
        drift: numeric features shifted by this many standard deviations (0: as recorded).
        label: a label column to write with the request ids (`--labels-out`); '' = none.
        rows: at most this many rows, from the top (0: all).
        batch_size: rows per request.
        seed: names the request ids, so two replays do not collide.
        timeout: seconds per request.
        id_column: a column sent with every record beside the model's inputs, so the records'
            own ids reach the inference log; the server must pass it through
            (`kfops serve --passthrough COL`). '' = none.
    """

    name: str = parameters.field(help="served model name")
    source: str = parameters.field(help="data to replay: path, s3:// or http(s):// URI")
    url: str = parameters.field("http://127.0.0.1:8080", "base URL of `kfops serve`")
    rate: float = parameters.field(0.0, "requests per second (0: no pacing)")
    drift: float = parameters.field(0.0, "shift numeric features by this many std deviations")
    label: str = parameters.field("", "label column written with --labels-out ('' = none)")
    rows: int = parameters.field(0, "send at most this many rows (0: all)")
    batch_size: int = parameters.field(50, "rows per request")
    seed: int = parameters.field(0, "names the request ids (replay-SEED-BATCH)")
    timeout: float = parameters.field(10.0, "seconds per request")
    id_column: str = parameters.field(
        "", "send this column too (serve with --passthrough COL to log it); '' = none"
    )

    def __post_init__(self):
        parsed = urllib.parse.urlparse(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise errors.ConfigError(f"--url must be http(s)://host:port, got {self.url!r}")
        if not (math.isfinite(self.rate) and self.rate >= 0):
            raise errors.ConfigError(f"--rate must be a number >= 0, got {self.rate}")
        if not math.isfinite(self.drift):
            raise errors.ConfigError(f"--drift must be a finite number, got {self.drift}")
        if self.rows < 0 or not 1 <= self.batch_size <= 10_000:
            raise errors.ConfigError("--rows must be >= 0 and --batch-size in [1, 10000]")


def replay(cfg: ReplayConfig) -> traffic.TrafficResult:
    """Sends the source's rows and returns the tally (labels of accepted rows when `label`).

    Raises:
        ConfigError: unreachable server, unknown model, or the data lacks a model input.
        DataError: the source cannot be read.
    """
    features = traffic.model_inputs(cfg)
    frame = ingest.ingest(cfg.source, settings=config.StoreSettings.from_env()).frame
    frame = frame.head(cfg.rows) if cfg.rows else frame
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise errors.ConfigError(
            f"model {cfg.name!r} takes {errors.preview(missing)} that {cfg.source} lacks"
        )
    if cfg.label and cfg.label not in frame.columns:
        raise errors.ConfigError(f"--label {cfg.label!r} is not a column of {cfg.source}")
    if cfg.id_column and cfg.id_column not in frame.columns:
        raise errors.ConfigError(
            f"--id-column {cfg.id_column!r} is not a column of {cfg.source}; its columns: "
            f"{errors.preview(list(frame.columns), 12)}"
        )
    fields = [*features, cfg.id_column] if cfg.id_column not in ("", *features) else features
    sent = shifted(frame, features, cfg.drift)
    statuses: Counter[int] = Counter()
    accepted, first_error, labels = 0, None, []
    start = time.monotonic()
    for i, lo in enumerate(range(0, len(sent), cfg.batch_size)):
        if cfg.rate:
            time.sleep(max(0.0, start + i / cfg.rate - time.monotonic()))
        batch = sent.iloc[lo : lo + cfg.batch_size]
        rid = f"replay-{cfg.seed}-{i:07d}"
        status, body = traffic._post(cfg, rid, {"instances": traffic.instances(batch, fields)})
        statuses[status] += 1
        if status == 200:
            accepted += len(batch)
            if cfg.label:
                labels.append(_labels(batch, rid, cfg.label))
        elif first_error is None:
            first_error = f"HTTP {status}: {body[:500]}"
    empty = _labels(sent.iloc[:0], "", cfg.label) if cfg.label else pd.DataFrame()
    return traffic.TrafficResult(
        requests=sum(statuses.values()),
        rows_sent=len(sent),
        rows_accepted=accepted,
        statuses=dict(sorted(statuses.items())),
        first_error=first_error,
        seconds=round(time.monotonic() - start, 3),
        labels=pd.concat(labels, ignore_index=True) if labels else empty,
    )


def shifted(frame: pd.DataFrame, features: list[str], drift: float) -> pd.DataFrame:
    """The frame with each numeric (non-bool) feature moved by `drift` of its std deviations."""
    if not drift:
        return frame
    out = frame.copy()
    for name in features:
        col = out[name]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            std = float(col.std()) if col.notna().sum() > 1 else 0.0
            out[name] = col.astype("float64") + drift * (std if std > 0 else 1.0)
    return out


def _labels(batch: pd.DataFrame, rid: str, label: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            logschema.REQUEST_ID: [rid] * len(batch),
            window.ROW: np.arange(len(batch), dtype="int64"),
            label: batch[label].to_numpy(),
        }
    )
