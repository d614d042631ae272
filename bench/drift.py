"""Detection quality of kfops' drift decision on builtin:churn, over many seeds.

For each seed, a window of logged traffic is drawn from builtin:churn with a given drift and judged
by `kfops.monitor.monitor` against a reference sample (5000 training rows, as `push` keeps) with
the champion's predictions on both sides, exactly as `kfops monitor` does. The decision uses the
default MonitorConfig (drift share >= 0.15 of the 10 features, i.e. two; Wasserstein /
Jensen-Shannon at 0.1 per column).

Prints the detection rate at the stated drift size, the false-alarm rate without drift, and a
detection curve over drift sizes. Targets: detection >= 95 %, false alarms <= 5 %.

Run: nice -n 10 .venv/bin/python bench/drift.py [--seeds 20] [--window 5000] [--drift 0.3]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from kfops import datasets, logschema, monitor, train
from kfops.validate import infer

REFERENCE_ROWS = 5000  # kfops.push.REFERENCE_ROWS


def scored(frame: pd.DataFrame, pipe, features: list[str]) -> pd.DataFrame:
    """Features plus the predictions the server would log for them."""
    out = frame[features].copy()
    out[logschema.PREDICTION] = pipe.predict(frame[features])
    out[logschema.PROBA] = pipe.predict_proba(frame[features])[:, -1]
    return out


def champion():
    """A model trained as the pipeline would (defaults, small search) on reference-time data."""
    data = datasets.churn(20_000, seed=999)
    data_schema = infer.infer_schema(data, label="churned")
    cfg = train.TrainConfig(label="churned", search_iterations=1, cv_folds=2, seed=0)
    return train.train(data, data_schema, cfg).pipeline, data_schema


def run(seeds: int, window: int, drifts: list[float]) -> dict[float, dict]:
    """Detection rate per drift size; drift 0 gives the false-alarm rate."""
    pipe, data_schema = champion()
    features = data_schema.feature_names
    cfg = monitor.MonitorConfig()
    out = {}
    for drift in drifts:
        hits, drifted_counts, seconds = 0, {}, 0.0
        for seed in range(seeds):
            ref = scored(datasets.churn(REFERENCE_ROWS, seed=10_000 + seed), pipe, features)
            cur = scored(datasets.churn(window, seed=seed, drift=drift), pipe, features)
            start = time.perf_counter()
            result = monitor.monitor(ref, cur, data_schema, cfg)
            seconds += time.perf_counter() - start
            hits += result.retrain
            for col in result.drifted_columns:
                drifted_counts[col] = drifted_counts.get(col, 0) + 1
        out[drift] = {"rate": hits / seeds, "columns": drifted_counts, "s_per_run": seconds / seeds}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--window", type=int, default=5000, help="logged rows per window")
    parser.add_argument("--drift", type=float, default=0.3, help="the stated drift size")
    parser.add_argument("--curve", default="0.1,0.2,0.5,1.0", help="extra drift sizes to report")
    args = parser.parse_args()
    curve = [float(x) for x in args.curve.split(",") if x]
    results = run(args.seeds, args.window, [0.0, args.drift, *curve])
    detection, false_alarms = results[args.drift]["rate"], results[0.0]["rate"]
    print(f"builtin:churn, {args.seeds} seeds, window {args.window} rows vs reference "
          f"{REFERENCE_ROWS} rows, default MonitorConfig")  # fmt: skip
    print(f"{'drift':>6} {'retrain rate':>13} {'s/run':>7}  drifted columns (count over seeds)")
    for drift, r in sorted(results.items()):
        cols = ", ".join(f"{c}:{n}" for c, n in sorted(r["columns"].items()))
        print(f"{drift:>6.2f} {r['rate']:>13.0%} {r['s_per_run']:>7.2f}  {cols}")
    ok_d, ok_f = detection >= 0.95, false_alarms <= 0.05
    verdict = {True: "OK", False: "MISS"}
    print(f"detection at drift {args.drift}: {detection:.0%} (target >= 95%: {verdict[ok_d]})")
    print(f"false alarms at drift 0: {false_alarms:.0%} (target <= 5%: {verdict[ok_f]})")


if __name__ == "__main__":
    main()
