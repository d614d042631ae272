"""Requests built with the official Triton/KServe V2 clients; what the model answers in-process."""

import numpy as np
import pandas as pd

# Each feature as the client sends it: charges as FP32 (the client's usual float) to exercise a
# datatype other than the schema's declared FP64.
DTYPES = {"tenure": "INT64", "charges": "FP32", "plan": "BYTES", "promo": "BOOL"}


def arrays(df: pd.DataFrame, start: int, n: int, nulls: bool) -> dict[str, np.ndarray]:
    """Feature columns as the numpy arrays a client holds; every third charge NaN if `nulls`."""
    rows = df.iloc[start : start + n]
    charges = rows["charges"].to_numpy(np.float32).copy()
    if nulls:
        charges[1::3] = np.nan
    return {
        "tenure": rows["tenure"].to_numpy(np.int64),
        "charges": charges,
        "plan": rows["plan"].to_numpy(object),
        "promo": rows["promo"].to_numpy(bool),
    }


def inputs(module, columns: dict[str, np.ndarray], binary: bool | None = None) -> list:
    """tritonclient InferInputs (http or grpc module) for the columns; `binary` only for http."""
    out = []
    for name, arr in columns.items():
        tensor = module.InferInput(name, [len(arr)], DTYPES[name])
        if binary is None:
            tensor.set_data_from_numpy(arr)
        else:
            tensor.set_data_from_numpy(arr, binary_data=binary)
        out.append(tensor)
    return out


def expected(pipeline, columns: dict[str, np.ndarray]):
    """(labels, probabilities or None) the pipeline gives in-process for the values sent."""
    frame = pd.DataFrame(
        {
            "tenure": columns["tenure"],
            "charges": columns["charges"].astype(np.float64),  # what the server received
            "plan": columns["plan"],
            "promo": columns["promo"],
        }
    )
    proba = pipeline.predict_proba(frame) if hasattr(pipeline, "predict_proba") else None
    return pipeline.predict(frame), proba


def assert_answers(result, pipeline, columns) -> None:
    """The client's decoded outputs equal the in-process predictions."""
    labels, proba = expected(pipeline, columns)
    got = result.as_numpy("predict")
    if labels.dtype.kind == "f":
        np.testing.assert_allclose(got, labels, rtol=1e-9)
    else:
        np.testing.assert_array_equal(got, labels)
    if proba is not None:
        np.testing.assert_allclose(result.as_numpy("predict_proba"), proba, rtol=1e-9)
