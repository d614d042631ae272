"""Where a V1 request's time goes, stage by stage, in process (no HTTP), for the served model.

Runs the server's own code on one thread, as the event loop and the predict thread do: orjson
decode, `v1.parse`, schema validation, the compiled transform, the estimator (tree walk and loss),
the V1 answer and its encoding. Times are the medians over `--repeat` requests of CPU time
(`time.thread_time`, which other processes on a shared machine do not inflate) and wall time.
The last column is the rows per second one worker could answer if the request cost only this
CPU (HTTP, the inference log and metrics come on top; `bench/serving.py --wrk` measures those).

Usage:
    .venv/bin/python bench/serving_stages.py --store S [--name churn] [--rows 1 100 1000]
(S: a store `kfops run` trained, e.g. the one `bench/serving.py --wrk` makes.)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import orjson
import pandas as pd

from kfops import features
from kfops.registry import REFERENCE_FILE
from kfops.serving import batching, dataplane, model, v1, validation
from kfops.store.base import open_store

STAGES = ("decode", "parse", "validate", "transform", "estimator", "answer", "total")


def load(store: str, name: str) -> tuple[model.ServedModel, validation.Validator, pd.DataFrame]:
    """The champion with its fast path, the server's validator and its reference rows."""
    source = model.open_source(open_store(store), None)
    served = model.with_fast_path(source.load(name, None))
    if served.fast is None:
        raise SystemExit(f"no fast path for {name}: {served.fast_note}")
    checker = validation.Validator(
        served.schema, validation.DEFAULT_POLICY, features.derived_inputs(served.pipeline)
    )
    with tempfile.TemporaryDirectory() as tmp:
        got = source.registry.fetch(name, served.version, tmp, [REFERENCE_FILE])
        frame = pd.read_parquet(got / REFERENCE_FILE)[checker.names]
    return served, checker, frame


def body_of(frame: pd.DataFrame, n: int) -> bytes:
    """A V1 body of n reference rows (cycled when the reference has fewer)."""
    rows = orjson.loads(frame.head(n).to_json(orient="records"))
    rows = (rows * (n // len(rows) + 1))[:n]
    return orjson.dumps({"instances": rows})


def one_request(served, checker, raw: bytes, clock) -> list[float]:
    """Each stage's time for one request, by `clock`."""
    marks = [clock()]
    body = orjson.loads(raw)
    marks.append(clock())
    request = v1.parse(body, checker.names, 1 << 20)
    marks.append(clock())
    checked = checker.validate(request.columns, request.n_rows, request.problems)
    marks.append(clock())
    x = served.fast.transform(checked.arrays)
    marks.append(clock())
    labels, proba = served.fast._block_predict(x, False)
    marks.append(clock())
    prediction = model.Prediction(labels, proba, model.FAST)
    result = dataplane.InferResult(served, prediction, request.n_rows, False, ())
    orjson.dumps(v1.response(result), option=orjson.OPT_SERIALIZE_NUMPY)
    marks.append(clock())
    steps = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    return [*steps, marks[-1] - marks[0]]


def measure(served, checker, frame, n: int, repeat: int) -> dict[str, tuple[float, float]]:
    """Stage -> (median CPU ms, median wall ms) over `repeat` requests of n rows."""
    raw = body_of(frame, n)
    one_request(served, checker, raw, time.perf_counter)  # warm-up
    cpu = [one_request(served, checker, raw, time.thread_time) for _ in range(repeat)]
    wall = [one_request(served, checker, raw, time.perf_counter) for _ in range(repeat)]
    return {
        stage: (
            statistics.median(r[i] for r in cpu) * 1e3,
            statistics.median(r[i] for r in wall) * 1e3,
        )
        for i, stage in enumerate(STAGES)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--name", default="churn")
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    batching.one_native_thread()  # as on the server's predicting threads
    served, checker, frame = load(args.store, args.name)
    print(f"{args.name} v{served.version}: {served.fast_note}")
    print("CPU ms (wall ms), medians; rows/s at that CPU")
    print("| rows | " + " | ".join(STAGES) + " | rows/s |")
    print("|---:|" + "---:|" * (len(STAGES) + 1))
    for n in args.rows:
        r = measure(served, checker, frame, n, args.repeat)
        cells = " | ".join(f"{cpu:.3f} ({wall:.3f})" for cpu, wall in r.values())
        print(f"| {n} | {cells} | {n / (r['total'][0] / 1e3):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
