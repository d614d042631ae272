"""How long the server's event loop waits while the inference log encodes a flush (GIL convoy).

Part 1: a thread encodes 10k one-row requests into Parquet twice (kfops.serving.inference_log, as
a 5-second flush at 2,000 req/s does) while an asyncio loop wakes every 0.2 ms, as a loop serving
I/O does. Prints, per trial, the encode's wall time and the loop's wake gaps (p50/p99/max) with
CPython's default GIL switch interval (5 ms) and with the server's (`app.SWITCH_INTERVAL`).

Part 2: the loop itself submits 20k one-row requests (one per wake) to the in-process writer
thread (`InferenceLogger`, the server before issue #16) and to the writer process the server uses
now (`ProcessLogger`), flushing every 5k rows; prints the loop's wake gaps and this process's CPU
per logged request (the child's is not on the server's cores' GIL).

Usage:
    .venv/bin/python bench/serving_stalls.py [--trials 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time

import numpy as np

from kfops.serving import app, inference_log, model
from kfops.store import local


def _chunks(n: int) -> list:
    one = {  # the `make run` model's ten inputs
        "region": np.array(["east"], object),
        "plan": np.array(["premium"], object),
        "age_band": np.array(["45-59"], object),
        "contract": np.array(["month-to-month"], object),
        "payment_method": np.array(["credit_card"], object),
        "tenure_months": np.array([9]),
        "monthly_charges": np.array([107.41]),
        "total_charges": np.array([1020.5]),
        "support_calls": np.array([5]),
        "has_internet": np.array([True]),
    }
    return [
        inference_log._Chunk(one, np.array([1]), np.array([0.7]), "1", f"r{i}", time.time_ns())
        for i in range(n)
    ]


def trial(chunks: list, interval: float) -> str:
    sys.setswitchinterval(interval)
    gaps: list[float] = []

    async def loop(stop: threading.Event) -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.0002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    def encode(stop: threading.Event) -> None:
        for _ in range(2):
            inference_log._parquet(chunks)
        stop.set()

    async def main() -> float:
        stop = threading.Event()
        task = asyncio.ensure_future(loop(stop))
        await asyncio.sleep(0.02)
        gaps.clear()
        start = time.perf_counter()
        threading.Thread(target=encode, args=(stop,)).start()
        await task
        return time.perf_counter() - start

    wall = asyncio.run(main())
    g = np.array(gaps) * 1e3
    return (
        f"switch interval {interval * 1e3:.1f} ms: encode {wall * 1e3:.0f} ms, loop wake gaps "
        f"p50 {np.median(g):.2f} p99 {np.percentile(g, 99):.2f} max {g.max():.2f} ms "
        f"(load {os.getloadavg()[0]:.1f})"
    )


class _Served:
    version = "1"


def log_trial(kind: type, chunks: list) -> str:
    """Wake gaps of a loop that submits one request per wake to the logger `kind`."""
    sys.setswitchinterval(app.SWITCH_INTERVAL)
    gaps: list[float] = []
    pred = model.Prediction(np.array([1]), np.array([[0.3, 0.7]]))
    with tempfile.TemporaryDirectory() as tmp:
        logger = kind(local.LocalStore(tmp), "churn", 1.0, flush_rows=5000).start()

        async def main() -> None:
            last = time.perf_counter()
            for c in chunks:
                logger.submit(c.arrays, pred, _Served, c.request_id, c.timestamp_ns)
                await asyncio.sleep(0.0002)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        cpu = time.process_time()
        asyncio.run(main())
        cpu = time.process_time() - cpu
        logger.close()
        written = logger.written
    g = np.array(gaps) * 1e3
    return (
        f"{kind.__name__:16s}: loop wake gaps p50 {np.median(g):.2f} p99 {np.percentile(g, 99):.2f}"
        f" max {g.max():.2f} ms; server CPU {cpu / len(chunks) * 1e6:.0f} us per logged request"
        f" ({written} rows written, load {os.getloadavg()[0]:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    chunks = _chunks(10_000)
    for _ in range(args.trials):
        for interval in (0.005, app.SWITCH_INTERVAL):
            print(trial(chunks, interval), flush=True)
    chunks = _chunks(20_000)
    for _ in range(args.trials):
        for kind in (inference_log.InferenceLogger, inference_log.ProcessLogger):
            print(log_trial(kind, chunks), flush=True)


if __name__ == "__main__":
    main()
