"""Issue #16's single-row tail, part by part: the make-run model under wrk -t1 -c8, A/B interleaved.

Serves the model `kfops run` trains (`--store S`, or trains one) in configurations that add the
server's background parts back one at a time, and runs wrk (bench/serving.py's Lua body, one row,
V1) against each in turn, `--repeat` rounds:
- floor: inference log off, champion poll off;
- log: the inference log on (its writer process), poll off;
- poll: the poll on, log off;
- default: as `kfops serve --store S --name churn` starts (log and poll on);
- workers2: the default with `--workers 2`.
Prints each run (req/s, p50/p99/p99.9/max ms, load average) and the medians. The target (issue #16):
>= 2,000 req/s with p99 < 5 ms and max < 20 ms, three runs in a row, on an idle 2-core machine.

Usage:
    .venv/bin/python bench/serving_tail.py [--store S] [--seconds 5] [--repeat 3] [--configs ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import serving  # noqa: E402

CONFIGS = {
    "floor": ["--log-sample-rate", "0", "--poll-interval", "0"],
    "log": ["--poll-interval", "0"],
    "poll": ["--log-sample-rate", "0"],
    "default": [],
    "workers2": ["--workers", "2"],
}
PATH = "/v1/models/churn:predict"


def one_run(store: Path, extra: list[str], body: dict, seconds: float, workdir: Path) -> dict:
    port = serving.free_port()
    proc = serving.start_kfops_with(port, ["--store", str(store), *extra])
    try:
        if not serving.wait_ready(proc, f"http://127.0.0.1:{port}/v2/health/ready"):
            sys.exit(f"the server did not become ready (exit code {proc.poll()})")
        serving.wrk_run(port, PATH, body, 2, 1, workdir)  # warm-up
        r = serving.wrk_run(port, PATH, body, 8, seconds, workdir)
    finally:
        serving.stop(proc)
    r["load"] = os.getloadavg()[0]
    return r


def line(name: str, r: dict) -> str:
    return (
        f"{name:9s} {r['rps']:6.0f} req/s  p50 {r['p50']:.2f}  p99 {r['p99']:.2f}  "
        f"p99.9 {r['p999']:.2f}  max {r['max']:.1f} ms  errors {r['errors']:.0f}  "
        f"load {r['load']:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="a store `kfops run` trained (default: train one)")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kfops-bench-tail-") as tmp:
        workdir = Path(tmp)
        store = Path(args.store) if args.store else serving.train_default_model(workdir)
        version = max((store / "models" / "churn").glob("[0-9]*"), key=lambda p: int(p.name))
        body = {"instances": serving.schema_rows(version, 1)[1]}
        runs: dict[str, list[dict]] = {name: [] for name in args.configs}
        for _ in range(args.repeat):
            for name in args.configs:
                runs[name].append(one_run(store, CONFIGS[name], body, args.seconds, workdir))
                print(line(name, runs[name][-1]), flush=True)
    print("\nmedians:")
    for name, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        print(line(name, med))


if __name__ == "__main__":
    main()
