"""`monitor_model()`: the store-level entry point the CLI and the component call.

It resolves the champion, builds (or reuses) the cached reference summary of that version, reads
the window of inference logs, and calls `monitor()`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from kfops import dataio, errors, logschema, registry
from kfops import labels as labels_mod
from kfops.monitor import core, exposition, reference, rules, window
from kfops.store import base

REFERENCE_FILE = registry.REFERENCE_FILE


def monitor_model(
    store: base.Store,
    name: str,
    cfg: rules.MonitorConfig,
    labels: pd.DataFrame | None = None,
    version: str | None = None,
) -> core.MonitorResult:
    """Judges the logged traffic of a registered model against its reference sample.

    Args:
        store: holds the registry (`models/`) and the server's logs (`logs/`).
        name: registered model name.
        cfg: window, thresholds, key columns, quality floor, sampling.
        labels: delayed ground truth (`kfops_request_id`, `kfops_row` for batched requests,
            and the label column), or None.
        version: the version to compare against (default: the champion).

    Returns:
        The result, with `model` and `version` filled in; its metrics are written to the
        store (kfops.monitor.exposition).

    Raises:
        NotFound: no such model, version or champion.
        ModelError: the version has no reference sample or cannot predict on it.
        SchemaViolation: the logs' columns differ from the model's.
    """
    loaded = registry.Registry(store).load(name, version)
    summary = reference_summary(store, loaded, cfg)
    features = loaded.schema.feature_names
    current = window.read_window(store, name, cfg.span, [*features, *logschema.META_COLUMNS])
    current = of_version(current, loaded.version)
    if labels is None:
        labels = stored_labels(store, name, loaded.schema.label)
    result = core.monitor(
        summary, current, loaded.schema, cfg, labels, model=name, version=loaded.version
    )
    exposition.write(store, result.to_dict())  # the outcome as metrics (Pushgateway body)
    return result


def of_version(current: pd.DataFrame, version: str) -> pd.DataFrame:
    """Only the rows the given version answered: each version is judged on its own traffic.

    After a new champion takes over, the window still holds the old one's requests; mixing them
    would judge the new model on predictions it never made.
    """
    if logschema.MODEL_VERSION not in current.columns:
        return current
    return current[current[logschema.MODEL_VERSION].astype(str) == str(version)].reset_index(
        drop=True
    )


def stored_labels(store: base.Store, name: str, label: str | None) -> pd.DataFrame | None:
    """Labels delivered to the store (kfops.labels), in the form the quality join reads; or None."""
    delivered = labels_mod.read(store, name)
    if not len(delivered) or not label:
        return None
    return delivered.rename(columns={labels_mod.LABEL: label})


def reference_summary(
    store: base.Store, loaded: registry.LoadedModel, cfg: rules.MonitorConfig
) -> pd.DataFrame:
    """The version's reference summary with predictions, from the cache or built and cached.

    Raises:
        ModelError: the version was registered without `reference.parquet`.
    """
    entry = loaded.manifest["files"].get(REFERENCE_FILE)
    if entry is None:
        raise errors.ModelError(
            f"model {loaded.name!r} version {loaded.version} has no {REFERENCE_FILE}; "
            "push it with a reference sample to monitor it"
        )
    kinds = reference.column_kinds(loaded.schema)
    key = reference.cache_key(
        loaded.name, loaded.version, entry["sha256"], {"rows": cfg.reference_rows, "kinds": kinds}
    )
    cached = reference.load_cached(store, key)
    if cached is not None:
        return cached
    with tempfile.TemporaryDirectory(prefix="kfops-monitor-") as tmp:
        registry.Registry(store).fetch(loaded.name, loaded.version, tmp, [REFERENCE_FILE])
        sample = dataio.read_frame(Path(tmp, REFERENCE_FILE))
    features = loaded.schema.feature_names
    core.check_columns(sample[features], loaded.schema, kinds, what="reference sample")
    scored = reference.with_predictions(sample, loaded.pipeline, features)
    kinds_all = {
        **kinds,
        logschema.PREDICTION: reference.prediction_kind(loaded.schema),
        logschema.PROBA: "num",
    }
    summary = reference.summarise(scored, kinds_all, cfg.reference_rows)
    reference.save_cached(store, key, summary)
    return summary
