"""Shadow overhead: the champion's latency with and without a shadow challenger beside it.

Two `kfops serve` processes on one registry (a local store): A serves the champion alone, B the
same champion with `--challenger 2` in shadow mode. One-row V1 requests go over keep-alive
HTTP/1.1 connections (http.client, one per client thread) in rounds interleaved A, B, A, B, ...
so a machine shared with other work loads both alike; each round's latencies are kept and the
medians of the per-round p50 and p99 are reported with the load average. The challenger is a
HistGradientBoosting model (slower than the logistic champion: the worst case for the shadow
process competing for the CPU) or, with --challenger-kind linear, another logistic model. B's
shadow child is waited for (it must have answered a request) before the first round, and B's
shadow outcomes (answered, dropped, off) are printed at the end: a run that dropped much did
not measure the full shadow load. Also printed: what the hand-off costs the event loop (the
pickled job per one-row request: microseconds and bytes), and per round the CPU time each
server process and its children (the shadow child) spent per request, from /proc: under
saturation the latencies depend on who else takes the 2 cores, the CPU per request much less.

The load generator shares the machine with the servers: `--load python` (default) is this
process's threads (a GIL-bound client that costs ~as much CPU per request as the server),
`--load wrk` is Debian's wrk (`make wrk`; C, one thread, `clients` connections, the same one-row
body every request): the fairer one for the latency bound. Either stops at a failed request: the
Python clients at the first non-200, wrk at the end of the round in which it counted any error
(HTTP status >= 400, timeout, socket error), so a finished run is also "no request failed".

Usage:
    nice -n 10 .venv/bin/python bench/shadow.py [--rounds 6] [--seconds 3] [--clients 1 4]
        [--load python|wrk]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import dataclasses
import http.client
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import serving  # bench/serving.py, beside this script: the same model and rows
from sklearn import base
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from kfops import modelio, registry
from kfops.serving import app, model, settings, shadow, v1
from kfops.store import local


def build_registry(root: Path, kind: str) -> pd.DataFrame:
    """Registers champion v1 (bench/serving.py's logistic pipeline) and challenger v2.

    The challenger is the same pipeline with another estimator, fitted on the same rows.
    """
    champion_dir, challenger_dir = root.parent / "v1", root.parent / "v2"
    champion_dir.mkdir()
    pipe, df = serving.build_model(champion_dir)  # also writes model.joblib + schema.json
    challenger_dir.mkdir()
    estimator = (
        HistGradientBoostingClassifier(max_iter=50)
        if kind == "trees"
        else LogisticRegression(C=0.1)
    )
    y = ((df.tenure < 20) & (df.charges > 60)).astype(int)  # bench/serving.py's label
    modelio.save_model(
        base.clone(pipe).set_params(est=estimator).fit(df, y), challenger_dir / registry.MODEL_FILE
    )
    shutil.copy(champion_dir / registry.SCHEMA_FILE, challenger_dir / registry.SCHEMA_FILE)
    reg = registry.Registry(local.LocalStore(root))
    for i, work in enumerate((champion_dir, challenger_dir)):
        files = {f: work / f for f in (registry.MODEL_FILE, registry.SCHEMA_FILE)}
        version = reg.register("churn", files, {}).version
        if i == 0:
            reg.promote("churn", version)
    return df


def start(store: Path, port: int, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "kfops.cli", "serve", "--store", str(store), "--name", "churn",
           "--port", str(port), "--log-sample-rate", "0", "--poll-interval", "0",
           *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1)
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server on {port} did not start")


def _client(port: int, bodies: list[bytes], until: float, out: list[float]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    i = 0
    while time.perf_counter() < until:
        start = time.perf_counter()
        conn.request("POST", "/v1/models/churn:predict", bodies[i % len(bodies)],
                     {"content-type": "application/json"})  # fmt: skip
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"request failed: {response.status}")
        out.append(time.perf_counter() - start)
        i += 1
    conn.close()


def _shadow_counts(port: int) -> dict[str, float]:
    """B's kfops_shadow_requests_total by outcome, from its /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("kfops_shadow_requests_total{"):
            out[line.split('"')[1]] = float(line.split()[-1])
    return out


def settled(port: int, seconds: float = 120.0) -> dict[str, float]:
    """B's shadow outcomes once the child has caught up (two reads 1 s apart agree)."""
    counts, deadline = _shadow_counts(port), time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = _shadow_counts(port)
        if now == counts:
            break
        counts = now
    return counts


def wait_shadow(port: int, body: bytes, seconds: float = 180.0) -> None:
    """Sends requests to B until its shadow child has answered one (it starts after the server)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        one_round(port, [body], 1, 0.05)
        if _shadow_counts(port).get("answered", 0) > 0:
            return
        time.sleep(0.5)
    raise SystemExit("the shadow child never answered")


def handoff_us(rows: list[dict], n: int = 2000) -> tuple[float, int]:
    """Median microseconds and bytes per one-row shadow job to pickle a full batch of them.

    What the loop pays per request to encode the frame (`shadow.BATCH` jobs in one pickle).
    """
    batch = getattr(shadow, "BATCH", 1)  # 1: a tree from before the batched hand-off
    request = v1.parse({"instances": [rows[0]]}, list(rows[0]), 1)
    job = ("0" * 32, ("1", "2"), 1e-4, [1], time.time_ns(), request.columns,
           request.n_rows, request.problems)  # fmt: skip
    jobs = [copy.deepcopy(job) for _ in range(batch)] if batch > 1 else job  # no shared memo
    times = []
    for _ in range(n):
        start = time.perf_counter()
        pickle.dumps(jobs, protocol=pickle.HIGHEST_PROTOCOL)
        times.append(time.perf_counter() - start)
    size = len(pickle.dumps(jobs, pickle.HIGHEST_PROTOCOL)) / batch
    return float(np.median(times) * 1e6) / batch, round(size)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads)."""
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def _children(pid: int) -> list[int]:
    """Every live descendant of `pid` (the shadow child, an inference-log writer)."""
    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


def _switches(pid: int) -> int:
    """Context switches so far of every thread of `pid` (each is a sleep and a wake-up or a
    preemption), from /proc/PID/task/*/status."""
    n = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if "ctxt_switches:" in line:
                n += int(line.split()[-1])
    return n


def _cpu(pid: int | None) -> tuple[float, float, int, int]:
    """So far: CPU seconds of the server process and of its live children; their switches."""
    if pid is None:
        return 0.0, 0.0, 0, 0
    children = _children(pid)
    cpu = _cpu_seconds(pid), sum(_cpu_seconds(c) for c in children)
    return (*cpu, _switches(pid), sum(_switches(c) for c in children))


def one_round(
    port: int, bodies: list[bytes], clients: int, seconds: float, pid: int | None = None,
    wrk_dir: Path | None = None,
) -> dict:  # fmt: skip
    """One closed-loop load window; with `pid`, the server's CPU per request in it too.

    The children's CPU is per request the shadow child answered in the window (it may lag).
    """
    answered = _shadow_counts(port).get("answered", 0.0) if pid is not None else 0.0
    before = _cpu(pid)
    if wrk_dir is not None:
        body = json.loads(bodies[0])
        r = serving.wrk_run(port, "/v1/models/churn:predict", body, clients, seconds, wrk_dir)
        if r["errors"]:  # non-2xx, timeouts, socket errors: a request failed
            raise SystemExit(f"{r['errors']} of {r['requests']} requests failed on port {port}")
        out = {"n": r["requests"], "p50": r["p50"], "p99": r["p99"]}
    else:
        until = time.perf_counter() + seconds
        per = [[] for _ in range(clients)]
        threads = [threading.Thread(target=_client, args=(port, bodies, until, p)) for p in per]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ms = np.concatenate([np.array(p) for p in per]) * 1000
        out = {"n": len(ms), "p50": np.percentile(ms, 50), "p99": np.percentile(ms, 99)}
    after = _cpu(pid)
    if pid is not None:
        answered = _shadow_counts(port).get("answered", 0.0) - answered
    n = max(out["n"], 1)
    spent = [a - b for a, b in zip(after, before, strict=True)]
    out["server_ms"], out["server_switches"] = spent[0] * 1000 / n, spent[2] / n
    out["children_ms"] = spent[1] * 1000 / answered if answered else 0.0
    out["children_switches"] = spent[3] / answered if answered else 0.0
    return out


def on_path_us(
    store: Path, rows: list[dict], challenger: str | None, n: int = 20000
) -> tuple[float, float]:
    """Microseconds per one-row request in this process: on the request path, and CPU in all.

    The first is the median time of the data plane's answer (what the lane adds on the request
    path: routing, timing), without HTTP; the shadow hand-off (queueing the job, the batch's
    pickle and pipe write, reading the child's acks) runs after each answer and is not in it.
    The second is this process's CPU time over the whole run (every thread, hand-offs and acks
    included, up to the child's last ack) per request: what shadowing costs the server. The
    child's own work runs in another process.
    """
    cfg = settings.ServeConfig(name="churn", challenger=challenger, poll_seconds=0)
    st = local.LocalStore(store)
    application = app.build_app(cfg, model.RegistrySource(registry.Registry(st)), st)
    plane = application.state.plane
    requests = [v1.parse({"instances": [r]}, list(rows[0]), 1) for r in rows]

    async def run() -> list[float]:
        lane = plane.rollout
        if lane is not None:
            lane.start()  # on the loop: the child's pipe is watched by it
            while lane.worker is not None and not lane.worker.ready:
                await asyncio.sleep(0.1)
        times, cpu = [], time.process_time()
        for i in range(n):
            request = dataclasses.replace(requests[i % len(requests)], request_id=str(i))
            active = plane.resolve("churn")
            start = time.perf_counter()
            await plane.infer_async(active, request, "v1")
            times.append(time.perf_counter() - start)
            if i % 64 == 0:
                await asyncio.sleep(0)  # let queued shadow hand-offs run
        while lane is not None and lane.shadowed + lane.dropped + lane.failed + lane.off < n:
            await asyncio.sleep(0.01)  # the child's acks: read (and paid for) by the loop
        cpu = time.process_time() - cpu
        if lane is not None:
            await asyncio.to_thread(lane.close)
        return times, cpu

    times, cpu = asyncio.run(run())
    return float(np.median(times) * 1e6), cpu / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--challenger-kind", choices=("trees", "linear"), default="trees")
    parser.add_argument("--load", choices=("python", "wrk"), default="python")
    parser.add_argument(
        "--in-process-only", action="store_true", help="only the in-process figures, no HTTP"
    )
    args = parser.parse_args()
    if args.load == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: make wrk (Debian's wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp, "store")
        df = build_registry(store, args.challenger_kind)
        rows = json.loads(df.head(200).to_json(orient="records"))
        bodies = [json.dumps({"instances": [r]}).encode() for r in rows]
        (alone, alone_cpu), (lane, lane_cpu) = (on_path_us(store, rows, c) for c in (None, "2"))
        print(f"on the request path, in process: {alone:.1f} us alone, {lane:.1f} us with "
              f"the shadow lane (+{lane - alone:.1f} us); server CPU per request, hand-off "
              f"included: {alone_cpu:.1f} us alone, {lane_cpu:.1f} us with the shadow lane "
              f"(+{lane_cpu - alone_cpu:.1f} us)")  # fmt: skip
        cost, size = handoff_us(rows)
        print(f"shadow hand-off per one-row request: pickling {cost:.1f} us, {size} bytes")
        if args.in_process_only:
            return
        ports = {"champion alone": 18731, "with shadow": 18732}
        procs = [start(store, ports["champion alone"]),
                 start(store, ports["with shadow"], "--challenger", "2")]  # fmt: skip
        pids = dict(zip(ports, (p.pid for p in procs), strict=True))
        wrk_dir = Path(tmp) if args.load == "wrk" else None
        try:
            wait_shadow(ports["with shadow"], bodies[0])
            print(f"load average before: {os.getloadavg()}; challenger: {args.challenger_kind}; "
                  f"load generator: {args.load}")  # fmt: skip
            for clients in args.clients:
                results = {k: [] for k in ports}
                for _ in range(args.rounds):
                    for label, port in ports.items():
                        results[label].append(
                            one_round(port, bodies, clients, args.seconds, pids[label], wrk_dir)
                        )
                print(f"\nclients {clients}: medians over {args.rounds} interleaved rounds "
                      "(CPU: ms per request, the server process / its children per request "
                      "the child answered; switches: context switches, the same)")  # fmt: skip
                print(f"{'':16}{'requests':>10}{'p50 ms':>9}{'p99 ms':>9}"
                      f"{'server CPU':>12}{'child CPU':>11}{'switches':>10}"
                      f"{'child sw':>10}")  # fmt: skip
                for label, rs in results.items():
                    print(f"{label:16}{sum(r['n'] for r in rs):>10}"
                          f"{np.median([r['p50'] for r in rs]):>9.3f}"
                          f"{np.median([r['p99'] for r in rs]):>9.3f}"
                          f"{np.median([r['server_ms'] for r in rs]):>12.3f}"
                          f"{np.median([r['children_ms'] for r in rs]):>11.3f}"
                          f"{np.median([r['server_switches'] for r in rs]):>10.2f}"
                          f"{np.median([r['children_switches'] for r in rs]):>10.3f}")  # fmt: skip
                a, b = (np.median([r["p99"] for r in results[k]]) for k in ports)
                verdict = "within" if b <= a + 1.0 else "ABOVE"
                print(f"shadow p99 {b:.3f} ms vs champion p99 + 1 ms = {a + 1:.3f}: {verdict}")
            print(f"\nload average after: {os.getloadavg()}")
            print(f"shadow outcomes on B: {settled(ports['with shadow'])}")
        finally:
            for p in procs:
                p.terminate()
                p.wait(30)


if __name__ == "__main__":
    main()
