"""Columns of the inference log the server writes and the monitor reads.

A log file is Parquet under `logs/<model>/<YYYY-MM-DD>/<HHMMSS>-<uuid>.parquet` in the store. It
holds the model's feature columns as received plus these metadata columns, prefixed so they never
collide with a feature name.
"""

REQUEST_ID = "kfops_request_id"
TIMESTAMP = "kfops_timestamp"  # UTC, pandas datetime64[ns, UTC]
MODEL_VERSION = "kfops_model_version"
PREDICTION = "kfops_prediction"
PROBA = "kfops_proba"  # classifiers: probability of the last class; else absent
META_COLUMNS = (REQUEST_ID, TIMESTAMP, MODEL_VERSION, PREDICTION, PROBA)


def log_prefix(model: str) -> str:
    """Store prefix of a model's inference logs."""
    return f"logs/{model}/"
