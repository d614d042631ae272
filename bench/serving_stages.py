"""Where a V1 request's time goes, stage by stage, in process (no HTTP), for the served model.

Runs the server's own code on one thread, as the event loop and the predict thread do: orjson
decode, `v1.parse`, schema validation, the compiled transform, the estimator (tree walk and loss),
the V1 answer and its encoding. Times are the medians over `--repeat` requests of CPU time
(`time.thread_time`, which other processes on a shared machine do not inflate) and wall time.
The last column is the rows per second one worker could answer if the request cost only this
CPU (HTTP, the inference log and metrics come on top; `bench/serving.py --wrk` measures those).

`--asgi C` measures the whole server instead, minus the socket and HTTP parsing: the app
`kfops serve --store S --name N` builds (inference lane, micro-batcher and its thread, metrics,
inference log with its writer process), called as ASGI by C concurrent clients in one event
loop. It prints the server process's CPU per request (`time.process_time`: every thread) and
the log writer's (its /proc CPU ticks), which the load of other processes barely changes, so
two code versions compare on a shared machine where wrk's req/s do not.

Usage:
    .venv/bin/python bench/serving_stages.py --store S [--name churn] [--rows 1 100 1000]
    .venv/bin/python bench/serving_stages.py --store S --asgi 8 [--rows 100] [--seconds 5]
(S: a store `kfops run` trained, e.g. the one `bench/serving.py --wrk` makes.)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

import orjson
import pandas as pd
import psutil

from kfops import features
from kfops.registry import REFERENCE_FILE
from kfops.serving import app, batching, dataplane, model, settings, v1, validation
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


async def _asgi_clients(lane, name: str, raw: bytes, clients: int, seconds: float) -> int:
    """Closed-loop clients calling the ASGI app until `seconds` pass; the requests answered."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": f"/v1/models/{name}:predict",
        "headers": [(b"content-type", b"application/json")],
    }
    message = {"type": "http.request", "body": raw, "more_body": False}
    deadline, done = time.monotonic() + seconds, 0

    async def receive():
        return message

    async def client():
        nonlocal done
        statuses = []

        async def send(m):
            if m["type"] == "http.response.start":
                statuses.append(m["status"])

        while time.monotonic() < deadline:
            await lane(scope, receive, send)
            done += 1
            await asyncio.sleep(0)  # the next request arrives through the loop, as from a socket
        if set(statuses) - {200}:
            raise SystemExit(f"the server answered {sorted(set(statuses))}")

    await asyncio.gather(*(client() for _ in range(clients)))
    return done


def _ticks(pid: int | None) -> float:
    """CPU seconds a process has used (0 without one)."""
    if pid is None:
        return 0.0
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


async def _asgi(store: str, name: str, frame, rows: list[int], clients: int, seconds: float):
    config = settings.ServeConfig(name=name, poll_seconds=0)
    opened = open_store(store)
    lane = app.build_app(config, model.open_source(opened, None), opened)
    print(f"in-process ASGI, {clients} clients, {seconds:g} s per size; CPU ms per request")
    print("| rows | req/s | server CPU | log writer CPU | rows/s at server CPU |")
    print("|---:|---:|---:|---:|---:|")
    async with lane.handlers.lifespan(lane.app):
        writer = getattr(lane.handlers.plane.inference_log, "pid", None)
        for n in rows:
            raw = body_of(frame, n)
            await _asgi_clients(lane, name, raw, clients, min(seconds, 1.0))  # warm-up
            cpu, log_cpu, wall = time.process_time(), _ticks(writer), time.perf_counter()
            done = await _asgi_clients(lane, name, raw, clients, seconds)
            await asyncio.sleep(0.5)  # the log writer's batch of the last requests
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            per = cpu / done * 1e3
            log_per = (_ticks(writer) - log_cpu) / done * 1e3
            cells = f"{done / wall:,.0f} | {per:.3f} | {log_per:.3f} | {n / per * 1e3:,.0f}"
            print(f"| {n} | {cells} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--name", default="churn")
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--asgi", type=int, metavar="C", help="the whole app, C clients")
    parser.add_argument("--seconds", type=float, default=5.0, help="--asgi: per size")
    args = parser.parse_args()
    if args.asgi:
        frame = load(args.store, args.name)[2]
        asyncio.run(_asgi(args.store, args.name, frame, args.rows, args.asgi, args.seconds))
        return
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
