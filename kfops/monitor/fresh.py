"""Retraining data built by the loop: the champion's training snapshot plus labelled traffic.

When the monitor decides to retrain, the new model should learn from what production saw, not
from the fixed source the first model came from. `build` takes

- the champion's training rows: the dataset snapshot its lineage names (kfops.snapshots), and
- the logged requests in `fresh_window` whose delayed labels have arrived (kfops.labels), joined
  on (kfops_request_id, kfops_row), with the label received before `as_of`,

and writes their union as a new dataset snapshot whose metadata names both parents (the old
snapshot's sha256 and the traffic window, label deliveries and counts). Training then reads that
snapshot like any other source, so push records its sha256 as the new model's data.

Policy (FreshDataConfig): the window, the minimum number of labelled rows (fewer: nothing is
built and retraining waits for labels), the largest share of old rows (the old rows are sampled
down, seeded, so fresh data is not drowned by a large history), and dedup of exact duplicates.

Logged rows hold only the model's features. Columns of the training data the server never sees
are filled so the snapshot keeps the champion's columns: an `id` column with the row's request
identity (`<request_id>/<row>`), a `time` column with the logged timestamp, others empty.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from kfops import errors, labels, logschema, parameters, registry, schema, snapshots
from kfops.monitor import rules, window
from kfops.store import base

RETRAIN_ON = ("fresh", "source")


class NotEnoughLabels(errors.DataError):
    """Too few logged rows have labels yet: retraining waits for them."""


@dataclasses.dataclass(frozen=True)
class FreshDataConfig:
    """What retraining trains on, and how the fresh dataset is put together."""

    retrain_on: str = parameters.field(
        "fresh", "fresh: the champion's snapshot plus labelled traffic; source: the source "
        "parameter as given", choices=RETRAIN_ON,
    )  # fmt: skip
    fresh_window: str = parameters.field(
        "all", "logged traffic whose labels count: all, a duration (7d) or START..END"
    )
    min_labelled_rows: int = parameters.field(
        200, "fewer labelled logged rows than this: build nothing, retraining waits for labels"
    )
    max_old_share: float = parameters.field(
        0.5, "at most this share of the result are the champion's rows (sampled, seeded); 1: all"
    )
    dedup: bool = parameters.field(True, "drop exact duplicate rows (all columns)")
    seed: int = parameters.field(0, "seeds the sample of old rows")

    def __post_init__(self):
        errors.check_choice("retrain_on", self.retrain_on, RETRAIN_ON)
        rules.Window.parse(self.fresh_window)  # fails now, not halfway through a build
        if self.min_labelled_rows < 1:
            raise errors.ConfigError(
                f"min_labelled_rows must be >= 1, got {self.min_labelled_rows}"
            )
        if not 0.0 <= self.max_old_share <= 1.0:
            raise errors.ConfigError(f"max_old_share must be in [0, 1], got {self.max_old_share}")
        errors.check_seed("seed", self.seed)


@dataclasses.dataclass(frozen=True)
class FreshData:
    """The built snapshot and how it was made (also its metadata's `fresh` block)."""

    snapshot: snapshots.Snapshot
    facts: dict[str, Any]

    @property
    def uri(self) -> str:
        """Where training reads it (a path or s3:// URI of the snapshot's Parquet file)."""
        return self.snapshot.uri


def build(
    store: base.Store, name: str, cfg: FreshDataConfig, *, now: dt.datetime | None = None
) -> FreshData:
    """Builds and stores the retraining dataset of `name`'s champion.

    Args:
        store: holds the registry, the inference logs, the labels and the snapshots.
        name: registered model name.
        cfg: the policy.
        now: the build time: the window's "now" and the labels' `as_of` (default: the clock).

    Returns:
        The snapshot (created, or found: the same inputs give the same bytes) and its facts.

    Raises:
        NotFound: no such model or champion.
        ConfigError: the champion has no dataset snapshot (registered before snapshots existed).
        NotEnoughLabels: fewer labelled logged rows in the window than `min_labelled_rows`.
    """
    now = now or dt.datetime.now(dt.UTC)
    reg = registry.Registry(store)
    version = reg.champion(name)
    if version is None:
        raise errors.NotFound(f"model {name!r} has no champion to retrain")
    lineage = (reg.manifest(name, version).get("metadata") or {}).get("lineage") or {}
    old_sha = str(lineage.get("data_sha256") or "")
    if not old_sha or not store.exists(snapshots.metadata_key(old_sha)):
        raise errors.ConfigError(
            f"champion {name} v{version} has no dataset snapshot (data sha256 {old_sha or '-'}); "
            "retrain on a source instead (retrain_on=source)"
        )
    data_schema = _schema(reg, name, version)
    old = snapshots.read(store, old_sha)
    span = rules.Window.parse(cfg.fresh_window, now)
    span = dataclasses.replace(span, end=min(span.end or now, now))
    features = data_schema.feature_names
    traffic = window.read_window(store, name, span, [*features, *logschema.META_COLUMNS])
    delivered = labels.read(store, name, as_of=now)
    joined = labels.join(traffic, delivered) if len(traffic) else traffic.iloc[:0]
    if len(joined) < cfg.min_labelled_rows:
        raise NotEnoughLabels(
            f"{len(joined)} of {len(traffic)} logged rows in window {cfg.fresh_window!r} have "
            f"labels, fewer than min_labelled_rows {cfg.min_labelled_rows}; deliver labels "
            f"(kfops labels add) and retry"
        )
    new = _as_training_rows(joined, old, data_schema)
    old_kept = _cap_old(old, len(new), cfg)
    frame = pd.concat([old_kept, new], ignore_index=True)
    duplicates = int(frame.duplicated().sum())
    if cfg.dedup and duplicates:
        frame = frame.drop_duplicates(ignore_index=True)
    facts = {
        "model": name,
        "champion_version": version,
        "as_of": now.isoformat(),
        "window": span.to_dict(),
        "policy": dataclasses.asdict(cfg),
        "old_rows": len(old),
        "old_rows_kept": len(old_kept),
        "logged_rows": len(traffic),
        "labels_delivered": len(delivered),
        "labelled_rows": len(new),
        "labels_outside_window": len(delivered) - len(joined),
        "duplicates": duplicates,
        "duplicates_dropped": duplicates if cfg.dedup else 0,
        "rows": len(frame),
        "traffic_versions": sorted(map(str, joined[logschema.MODEL_VERSION].dropna().unique()))
        if logschema.MODEL_VERSION in joined
        else [],
    }
    snap = snapshots.put_frame(
        store, frame, {"source": f"fresh:{name}", "parents": [old_sha], "fresh": facts}
    )
    return FreshData(snap, facts)


def _schema(reg: registry.Registry, name: str, version: str) -> schema.Schema:
    with tempfile.TemporaryDirectory(prefix="kfops-fresh-") as tmp:
        reg.fetch(name, version, tmp, [registry.SCHEMA_FILE])
        return schema.Schema.load(Path(tmp, registry.SCHEMA_FILE))


def _as_training_rows(
    joined: pd.DataFrame, old: pd.DataFrame, data_schema: schema.Schema
) -> pd.DataFrame:
    """Labelled logged rows in the columns (and dtypes) of the champion's training data."""
    label = data_schema.label
    if label is None:
        raise errors.ConfigError("the champion's schema has no label: nothing to retrain on")
    out = pd.DataFrame(index=joined.index)
    roles = {c.name: c.role for c in data_schema.columns}
    for column in old.columns:
        if column == label:
            out[column] = joined[labels.LABEL]
        elif column in joined.columns:
            out[column] = joined[column]
        elif roles.get(column) == "id":
            out[column] = joined[labels.REQUEST_ID] + "/" + joined[labels.ROW].astype(str)
        elif roles.get(column) == "time" and pd.api.types.is_datetime64_any_dtype(old[column]):
            out[column] = joined[logschema.TIMESTAMP]
        else:
            out[column] = None  # the server never sees it
    return _like(out.reset_index(drop=True), old)


def _like(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """Casts each column to the old data's dtype where the values allow (else leaves it)."""
    for column in new.columns:
        want = old[column].dtype
        if new[column].dtype == want:
            continue
        try:
            if pd.api.types.is_datetime64_any_dtype(want):
                stamps = pd.to_datetime(new[column], utc=True)
                tz = getattr(want, "tz", None)
                new[column] = stamps.dt.tz_convert(tz) if tz else stamps.dt.tz_localize(None)
            elif new[column].isna().all():  # never logged: object stays, numbers become float
                new[column] = new[column].astype(
                    object if pd.api.types.is_object_dtype(want) else "float64"
                )
            else:
                new[column] = new[column].astype(want)
        except (ValueError, TypeError) as e:
            raise errors.SchemaViolation(
                column, "labelled traffic dtype", f"cannot hold {want} values: {e}"
            ) from e
    return new


def _cap_old(old: pd.DataFrame, new_rows: int, cfg: FreshDataConfig) -> pd.DataFrame:
    """At most max_old_share of the result: old rows sampled down (seeded), kept in order."""
    if cfg.max_old_share >= 1.0:
        return old
    cap = int(cfg.max_old_share / (1.0 - cfg.max_old_share) * new_rows)
    if len(old) <= cap:
        return old
    return old.sample(n=cap, random_state=cfg.seed).sort_index()
