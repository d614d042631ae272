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

Beside latency, each run says where the time went, which stays readable when the machine is busy:
the server's CPU per request (its process tree: workers and the log writer), wrk's CPU per
request, how often the server's processes were preempted (involuntary context switches per 1,000
requests: the scheduler taking a core from them while runnable) and the host's steal time (%).
A tail from scheduling shows as many preemptions at the same CPU per request.

Usage:
    .venv/bin/python bench/serving_tail.py [--store S] [--seconds 5] [--repeat 3] [--configs ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

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
    log = workdir / f"serve-{port}.log"
    with log.open("wb") as err:
        proc = serving.start_kfops_with(port, ["--store", str(store), *extra], stderr=err)
    try:
        workers = int(extra[extra.index("--workers") + 1]) if "--workers" in extra else 1
        if not _all_serving(proc, log, workers):
            sys.exit(f"the server did not become ready (exit code {proc.poll()})")
        serving.wrk_run(port, PATH, body, 2, 1, workdir)  # warm-up
        before = (_server_usage(proc.pid), _wrk_cpu(), _steal())
        r = serving.wrk_run(port, PATH, body, 8, seconds, workdir)
        after = (_server_usage(proc.pid), _wrk_cpu(), _steal())
    finally:
        serving.stop(proc)
    n = max(r["requests"], 1)
    r["srv_us"] = (after[0][0] - before[0][0]) / n * 1e6
    r["preempt_k"] = (after[0][1] - before[0][1]) / n * 1000
    r["wrk_us"] = (after[1] - before[1]) / n * 1e6
    (steal0, total0), (steal1, total1) = before[2], after[2]
    r["steal"] = 100 * (steal1 - steal0) / max(total1 - total0, 1)
    r["load"] = os.getloadavg()[0]
    return r


def _all_serving(proc: subprocess.Popen, log: Path, workers: int, timeout: float = 180) -> bool:
    """Every worker has loaded the model (its "serving" log line), not just the first to answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if log.read_bytes().count(b'"msg":"serving"') >= workers:
            return True
        time.sleep(0.2)
    return False


def _server_usage(pid: int) -> tuple[float, int]:
    """CPU seconds and involuntary context switches of the server's process tree so far."""
    cpu, preempted = 0.0, 0
    root = psutil.Process(pid)
    for p in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            cpu += t.user + t.system
            preempted += p.num_ctx_switches().involuntary
    return cpu, preempted


def _wrk_cpu() -> float:
    """CPU seconds of this script's finished children (each wrk run is waited for)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _steal() -> tuple[int, int]:
    """The host's (steal, total) CPU ticks (/proc/stat): time a hypervisor gave to others."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return ticks[7], sum(ticks)


def line(name: str, r: dict) -> str:
    return (
        f"{name:9s} {r['rps']:6.0f} req/s  p50 {r['p50']:.2f}  p99 {r['p99']:.2f}  "
        f"p99.9 {r['p999']:.2f}  max {r['max']:.1f} ms  errors {r['errors']:.0f}  "
        f"server {r['srv_us']:.0f} us/req  wrk {r['wrk_us']:.0f} us/req  "
        f"preempted {r['preempt_k']:.1f}/1k req  steal {r['steal']:.1f} %  load {r['load']:.1f}"
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
