"""The server-side CPU of two per-request steps after the answer: the inference log hand-off
(`ProcessLogger.submit` on an event loop, with the real writer child) and the prediction
counter (`PredictionCollector.add`), for one V1 request of the served model.

Thread CPU (`time.thread_time`) of the calls only, so other processes on a shared machine barely
change it; the loop sleeps 2 ms every 8 requests so the child keeps up (nothing is dropped).

Usage: .venv/bin/python bench/log_handoff.py --store S [--name churn] [--rows 100] [--n 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time

import orjson

sys.path.insert(0, os.path.dirname(__file__))
import serving_stages  # noqa: E402

from kfops.serving import inference_log, metrics, model, v1  # noqa: E402
from kfops.store import local  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--name", default="churn")
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    served, checker, frame = serving_stages.load(args.store, args.name)
    body = orjson.loads(serving_stages.body_of(frame, args.rows))
    request = v1.parse(body, checker.names, 1 << 20)
    arrays = checker.validate(request.columns, request.n_rows, request.problems).arrays
    labels, proba = served.fast._block_predict(served.fast.transform(arrays), served.has_proba)
    prediction = model.Prediction(labels, proba)
    with tempfile.TemporaryDirectory() as tmp:
        logger = inference_log.ProcessLogger(local.LocalStore(tmp), args.name, 1.0).start()

        async def run() -> float:
            spent = 0.0
            for i in range(args.n):
                start = time.thread_time()
                logger.submit(arrays, prediction, served, f"r{i}", time.time_ns())
                spent += time.thread_time() - start
                if i % 8 == 7:
                    await asyncio.sleep(0.002)
            return spent

        spent = asyncio.run(run())
        logger.close()
    counter = metrics.PredictionCollector()
    start = time.thread_time()
    for _ in range(args.n):
        counter.add(served, labels)
    counted = time.thread_time() - start
    print(
        f"{args.rows} rows: log hand-off {spent / args.n * 1e6:.1f} us a request "
        f"(written {logger.written}, dropped {logger.dropped}); "
        f"prediction counter {counted / args.n * 1e6:.1f} us"
    )


if __name__ == "__main__":
    main()
