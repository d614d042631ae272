"""Save and load model files: byte-reproducible, sha256-checked, with clear errors.

Saved models are joblib pickles of scikit-learn Pipelines. Loading a pickle runs code, so a model
file is only loaded after its sha256 matches the one recorded when it was saved.

This module also holds the small column converters that saved pipelines call at predict time.
A pickle refers to a function by its import path, so moving or renaming one of them would break
loading every model saved before: they live here, in the module whose job is the model format.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from kfops import dataio, errors

# Fixed so the same pipeline gives the same bytes whatever joblib's default becomes.
PICKLE_PROTOCOL = 5


def save_model(pipeline: Any, path: str | os.PathLike) -> str:
    """Writes the model atomically and returns the file's sha256.

    The bytes depend only on the fitted model (no timestamps, no compression headers), so the
    same data and seed give the same sha256 in any process.

    Raises:
        ModelError: the object cannot be pickled.
        StorageError: the file cannot be written.
    """
    buffer = io.BytesIO()
    try:
        joblib.dump(pipeline, buffer, protocol=PICKLE_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise errors.ModelError(f"cannot pickle {type(pipeline).__name__}: {e}") from e
    data = buffer.getvalue()
    try:
        dataio.atomic_write_bytes(path, data)
    except OSError as e:
        raise errors.StorageError(f"cannot write model {path}: {e.strerror or e}") from e
    return dataio.sha256_bytes(data)


def load_model(path: str | os.PathLike, expected_sha256: str | None = None) -> Any:
    """Loads a model saved by `save_model`, verifying its sha256 first when one is given.

    Args:
        path: the model file.
        expected_sha256: the recorded digest; None skips the check (only for files you made).

    Returns:
        The fitted pipeline.

    Raises:
        NotFound: no such file.
        IntegrityError: the file's sha256 differs from `expected_sha256`.
        ModelError: the file cannot be unpickled (the message names a scikit-learn version
            mismatch when there is one) or holds no model.
    """
    path = Path(path)
    if not path.is_file():
        raise errors.NotFound(f"no model file at {path}")
    if expected_sha256:
        actual = dataio.sha256_file(path)
        if actual != expected_sha256:
            raise errors.IntegrityError(
                f"model {path} has sha256 {actual}, expected {expected_sha256}: "
                "the file was changed or truncated after it was saved; refusing to load it"
            )
    # Imported here: reading the registry (`kfops models list`) must not load scikit-learn;
    # unpickling a model loads it anyway.
    from sklearn import exceptions as sk_exceptions  # noqa: PLC0415

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", sk_exceptions.InconsistentVersionWarning)
        try:
            model = joblib.load(path)
        except Exception as e:  # noqa: BLE001 (unpickling can raise anything the pickle names)
            raise errors.ModelError(
                f"cannot load model {path}: {e!r}{_version_hint(caught)}"
            ) from e
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if not hasattr(model, "predict"):
        raise errors.ModelError(
            f"{path} holds a {type(model).__name__}, not a model with predict()"
        )
    return model


def _version_hint(caught: list[warnings.WarningMessage]) -> str:
    from sklearn import exceptions as sk_exceptions  # noqa: PLC0415 (see load_model)

    for warning in caught:
        message = warning.message
        if isinstance(message, sk_exceptions.InconsistentVersionWarning):
            return (
                f" (saved with scikit-learn {message.original_sklearn_version}, this "
                f"environment has {message.current_sklearn_version}: load it with the version "
                "it was saved with, "
                "or retrain)"
            )
    return ""


def as_float(frame: pd.DataFrame) -> np.ndarray:
    """Numeric columns as a float64 array, with any missing marker (None, pd.NA) as NaN.

    Called inside saved pipelines: do not rename or move.
    """
    return pd.DataFrame(frame).to_numpy(dtype="float64", na_value=np.nan)


def as_text(frame: pd.DataFrame) -> np.ndarray:
    """Categorical columns as an object array of str, with every missing marker as NaN.

    Encoders treat None and NaN as two different categories and refuse mixed str/int columns;
    one canonical form makes training and serving agree. Called inside saved pipelines: do not
    rename or move.
    """
    frame = pd.DataFrame(frame)
    out = frame.astype(str).to_numpy(dtype=object)
    out[frame.isna().to_numpy()] = np.nan
    return out
