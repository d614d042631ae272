"""Serving benchmark: kfops vs MLServer + mlserver-sklearn vs KServe's Python model server.

The same fitted pipeline (ColumnTransformer + LogisticRegression, saved with joblib) is served by
each server on 127.0.0.1; one load generator (raw keep-alive HTTP/1.1 over asyncio, in its own
process) sends single-row and 100-row requests at concurrency 1, 8 and 32, each run bounded by
time and request count, repeated (`--repeat`, interleaved across servers) with medians reported.
Prints requests/s, p50 and p99 side by side with ratios, and two in-process floors: the sklearn
pipeline's predict and kfops' compiled fast path. kfops runs three times: as configured by default
(fast path on, inference log off), with `--no-fast-path` (sklearn and micro-batching, to show what
the fast path buys), and with every request logged to a local store (`--log-sample-rate 1`).

Competitors are installed from PyPI into throwaway venvs (never into .venv: they pin conflicting
dependencies), e.g.:
    python3.11 -m venv /tmp/venv-mlserver && /tmp/venv-mlserver/bin/pip install \
        scikit-learn==<same as .venv> mlserver mlserver-sklearn "uvloop<0.22"
    python3.11 -m venv /tmp/venv-kserve && /tmp/venv-kserve/bin/pip install \
        scikit-learn==<same as .venv> kserve pandas
(MLServer 1.7.1's inference-pool workers call asyncio.get_event_loop(), which uvloop >= 0.22
refuses, so the pool dies at startup without the uvloop pin.) A competitor whose venv is missing
is reported as not run.

`--wrk` mode uses Debian's wrk (`make wrk`) as an independent closed-loop load generator (one
thread, keep-alive, `-c` = concurrency; V1 JSON bodies of 1/100/1000 rows from Lua scripts it
writes) on two models: the linear one above (`kfops serve --model-dir`, log off) and the model
`make run` trains (HistGradientBoosting on builtin:churn, served as a new user would:
`kfops serve --store S --name churn`, inference log on; `--hgb-store S` reuses a store, else
`kfops run` trains one). MLServer serves the same joblib in the same run (V2, pandas content
type) when its venv exists. Reports req/s, rows/s, p50/p99/p99.9/max, kfops/MLServer ratios and
the load average.

Usage:
    nice -n 10 .venv/bin/python bench/serving.py [--seconds 3] [--max-requests 20000] [--repeat 3]
    .venv/bin/python bench/serving.py --wrk [--seconds 8] [--repeat 3] [--hgb-store .kfops/store]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from kfops import modelio, schema
from kfops.registry import MODEL_FILE, REFERENCE_FILE, SCHEMA_FILE
from kfops.serving import dataplane, model, v2, validation

PLANS = ("basic", "plus", "pro")
FEATURES = ("tenure", "charges", "plan", "promo")
V2_TYPES = {"tenure": "INT64", "charges": "FP64", "plan": "BYTES", "promo": "BOOL"}
CONCURRENCY = (1, 8, 32)
ROWS = (1, 100)

KSERVE_SCRIPT = """
import sys, joblib, pandas as pd, kserve

class Churn(kserve.Model):
    def __init__(self, name, path):
        super().__init__(name)
        self.model = joblib.load(path)
        self.ready = True

    def predict(self, payload, headers=None):
        frame = pd.DataFrame(payload["instances"])
        return {"predictions": self.model.predict(frame).tolist()}

if __name__ == "__main__":
    path = sys.argv.pop(1)
    kserve.ModelServer().start([Churn("churn", path)])
"""


def build_model(workdir: Path, n: int = 2000, seed: int = 0) -> tuple[Pipeline, pd.DataFrame]:
    """Fits the benchmark pipeline and writes model.joblib + schema.json into workdir."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "tenure": rng.integers(0, 73, n),
            "charges": rng.uniform(20, 120, n).round(2),
            "plan": rng.choice(PLANS, n),
            "promo": rng.random(n) < 0.3,
        }
    )
    y = ((df.tenure < 20) & (df.charges > 60)).astype(int)
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["tenure", "charges"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
            ("flag", "passthrough", ["promo"]),
        ]
    )
    pipe = Pipeline([("pre", pre), ("est", LogisticRegression())]).fit(df, y)
    modelio.save_model(pipe, workdir / MODEL_FILE)
    schema.Schema(
        (
            schema.ColumnSpec("tenure", "int", nullable=False, min=0, max=72),
            schema.ColumnSpec("charges", "float", min=20.0, max=120.0),
            schema.ColumnSpec("plan", "string", nullable=False, domain=PLANS),
            schema.ColumnSpec("promo", "bool", nullable=False),
        ),
        task="classification",
    ).save(workdir / SCHEMA_FILE)
    return pipe, df


def rows_json(df: pd.DataFrame, n: int) -> list[dict]:
    return json.loads(df.head(n).to_json(orient="records"))


def v2_body(rows: list[dict], mlserver: bool) -> dict:
    inputs = [
        {"name": c, "shape": [len(rows)], "datatype": V2_TYPES[c], "data": [r[c] for r in rows]}
        for c in FEATURES
    ]
    if not mlserver:
        return {"inputs": inputs}
    inputs[2]["parameters"] = {"content_type": "str"}  # decode BYTES as str, not bytes
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_kfops(workdir: Path, port: int, *extra: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "kfops.cli",
        "serve",
        "--model-dir",
        str(workdir),
        "--name",
        "churn",
        "--port",
        str(port),
        "--poll-interval",
        "0",
        "--log-sample-rate",
        "0",
        *extra,
    ]
    return subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def start_mlserver(venv: Path, workdir: Path, port: int, env=None) -> subprocess.Popen:
    msdir = workdir / "mlserver"
    msdir.mkdir(exist_ok=True)
    (msdir / "settings.json").write_text(
        json.dumps(
            {
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                "debug": False,
            }
        )
    )
    (msdir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "churn",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": str(workdir / MODEL_FILE), "version": "1"},
            }
        )
    )
    return subprocess.Popen(
        [str(venv / "bin" / "mlserver"), "start", str(msdir)],
        cwd=msdir,  # MLServer writes its Prometheus files under ./.metrics
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def start_kserve(venv: Path, workdir: Path, port: int) -> subprocess.Popen:
    script = workdir / "kserve_churn.py"
    script.write_text(KSERVE_SCRIPT)
    cmd = [
        str(venv / "bin" / "python"),
        str(script),
        str(workdir / MODEL_FILE),
        "--http_port",
        str(port),
        "--grpc_port",
        str(free_port()),
    ]
    return subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 180) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server we started (its own session/group), then SIGKILL the group if needed."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


# ---- load generator (runs in its own process: `serving.py --loadgen ...`) ----


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
    }
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def _load(
    port: int, request: bytes, concurrency: int, seconds: float, max_requests: int
) -> dict:
    latencies, errors, sent = [], [0], [0]
    deadline = time.perf_counter() + seconds

    async def worker():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline and sent[0] < max_requests:
            sent[0] += 1
            start = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - start)
            errors[0] += status != 200
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {
        "requests": len(lat),
        "errors": errors[0],
        "rps": len(lat) / elapsed,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "p90": float(np.percentile(lat, 90)),
        "max": float(lat.max()),
    }


def loadgen_main(argv: list[str]) -> None:
    port, path, body_file, concurrency, seconds, max_requests = argv
    body = Path(body_file).read_bytes()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    result = asyncio.run(
        _load(int(port), request, int(concurrency), float(seconds), int(max_requests))
    )
    print(json.dumps(result))


def run_load(
    port: int,
    path: str,
    body: dict,
    concurrency: int,
    seconds: float,
    max_requests: int,
    workdir: Path,
) -> dict:
    body_file = workdir / "body.json"
    body_file.write_text(json.dumps(body))
    cmd = [
        sys.executable,
        __file__,
        "--loadgen",
        str(port),
        path,
        str(body_file),
        str(concurrency),
        str(seconds),
        str(max_requests),
    ]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


# ---- the benchmark ----


def floor_ms(pipe: Pipeline, df: pd.DataFrame, n: int, repeat: int = 300) -> float:
    """In-process pipeline.predict on an n-row DataFrame, median milliseconds."""
    frame = df.head(n)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        pipe.predict(frame)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def compiled_floor_ms(workdir: Path, df: pd.DataFrame, n: int, repeat: int = 2000) -> float:
    """In-process predict through kfops' compiled fast path (what `kfops serve` runs), median ms."""
    served = model.with_fast_path(model.DirectorySource(workdir).load("churn", None))
    assert served.fast is not None, served.fast_note
    validator = validation.Validator(served.schema)
    request = v2.parse(v2_body(rows_json(df, n), False), validator.dtypes, served.output_names, n)
    columns = validator.validate(request.columns, n).arrays
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        served.predict(columns, want_proba=False)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def overhead_us(workdir: Path, df: pd.DataFrame, n: int, repeat: int = 500) -> float:
    """kfops' own work per V2 request outside scikit-learn: parse, validate, build the frame, encode
    the response (median microseconds, in-process)."""
    served = model.DirectorySource(workdir).load("churn", None)
    validator = validation.Validator(served.schema)
    raw = orjson.dumps(v2_body(rows_json(df, n), mlserver=False))
    pred = served.predict(model.example_frame(served.schema, n), want_proba=True)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        request = v2.parse(orjson.loads(raw), validator.dtypes, served.output_names, 10_000)
        validator.validate(request.columns, request.n_rows)
        result = dataplane.InferResult(served, pred, n, True, served.output_names)
        orjson.dumps(v2.response(result, "id"), option=orjson.OPT_SERIALIZE_NUMPY)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e6)


def servers(args, workdir: Path):
    """name -> starter for each server that can run here (missing venvs are skipped)."""
    out = {
        "kfops": lambda p: start_kfops(workdir, p),
        "kfops-sklearn": lambda p: start_kfops(workdir, p, "--no-fast-path"),
        "kfops-logged": lambda p: start_kfops(
            workdir, p, "--log-sample-rate", "1", "--store", str(workdir / "log-store")
        ),
    }
    ml, ks = Path(args.mlserver_venv), Path(args.kserve_venv)
    if (ml / "bin" / "mlserver").exists():
        out["MLServer"] = lambda p: start_mlserver(ml, workdir, p)
    if (ks / "bin" / "python").exists():
        out["KServe"] = lambda p: start_kserve(ks, workdir, p)
    return out


# label -> (server, readiness path, inference path, body builder)
TARGETS = {
    "kfops V2": (
        "kfops",
        "/v2/health/ready",
        "/v2/models/churn/infer",
        lambda r: v2_body(r, False),
    ),
    "kfops V1": (
        "kfops",
        "/v2/health/ready",
        "/v1/models/churn:predict",
        lambda r: {"instances": r},
    ),
    "kfops V2 sklearn path": (
        "kfops-sklearn",
        "/v2/health/ready",
        "/v2/models/churn/infer",
        lambda r: v2_body(r, False),
    ),
    "kfops V2 logged": (
        "kfops-logged",
        "/v2/health/ready",
        "/v2/models/churn/infer",
        lambda r: v2_body(r, False),
    ),
    "MLServer V2": (
        "MLServer",
        "/v2/models/churn/ready",
        "/v2/models/churn/infer",
        lambda r: v2_body(r, True),
    ),
    "KServe V1": (
        "KServe",
        "/v1/models/churn",
        "/v1/models/churn:predict",
        lambda r: {"instances": r},
    ),
}


def predictions(answer: dict) -> list:
    if "predictions" in answer:
        return answer["predictions"]
    return next(o["data"] for o in answer["outputs"] if o["name"] == "predict")


def check_targets(ports: dict, df: pd.DataFrame, expected: list) -> dict:
    """label -> port when the server is up and answers like in-process predict, else why not."""
    out = {}
    for label, (name, _, path, body_for) in TARGETS.items():
        if not isinstance(ports.get(name), int):
            out[label] = ports.get(name, "venv not installed")
            continue
        answer = post(f"http://127.0.0.1:{ports[name]}{path}", body_for(rows_json(df, 100)))
        same = [int(x) for x in predictions(answer)] == expected
        out[label] = ports[name] if same else "predictions differ from in-process predict"
    return out


def run_all(targets: dict, args, workdir: Path, df: pd.DataFrame, pipe) -> tuple[dict, dict]:
    """Runs each scenario on every server back to back.

    Interleaving means drifting background load on a shared machine hits all servers alike.
    """
    results = {label: ({"error": t} if isinstance(t, str) else {}) for label, t in targets.items()}
    floors = {}
    for n in args.rows:
        floors[n] = (floor_ms(pipe, df, n), compiled_floor_ms(workdir, df, n))
        print(
            f"floor: pipeline.predict on {n} row(s) {floors[n][0]:.2f} ms, compiled "
            f"{floors[n][1] * 1000:.0f} us; kfops overhead (V2 parse, validate, respond) "
            f"{overhead_us(workdir, df, n):.0f} us",
            flush=True,
        )
        for label, port in targets.items():
            if isinstance(port, int):
                run_load(
                    port,
                    TARGETS[label][2],
                    TARGETS[label][3](rows_json(df, n)),
                    4,
                    1.0,
                    500,
                    workdir,
                )
        for c in args.concurrency:
            runs = {label: [] for label in targets}
            for _ in range(args.repeat):
                for label, port in targets.items():
                    if isinstance(port, str):
                        continue
                    body = TARGETS[label][3](rows_json(df, n))
                    r = run_load(
                        port, TARGETS[label][2], body, c, args.seconds, args.max_requests, workdir
                    )
                    runs[label].append(r)
                    print(f"  {label:12s} rows={n:3d} c={c:2d}: {_cell(r)}", flush=True)
            for label, rs in runs.items():
                if rs:
                    results[label][(n, c)] = _median(rs)
    return results, floors


def _median(runs: list[dict]) -> dict:
    """Each figure's median over repeated runs (a shared machine's noise hits single runs);
    requests and errors are totals."""
    out = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
    out.update({k: sum(r[k] for r in runs) for k in ("requests", "errors")})
    return out


def _cell(r: dict) -> str:
    errors = f" {r['errors']} err" if r["errors"] else ""
    return f"{r['rps']:.0f} ({r['p50']:.2f}/{r['p99']:.2f}){errors}"


def report(all_results: dict, floors: dict, rows=ROWS, concurrency=CONCURRENCY) -> str:
    """Markdown: req/s (p50/p99 ms) per server, and kfops V2's throughput ratio to the others."""
    labels = list(all_results)
    kfops = all_results["kfops V2"]
    head = " | ".join(f"{lb} req/s (p50/p99 ms)" for lb in labels)
    lines = [
        f"| rows | conc | {head} | kfops V2 / other (req/s) |",
        "|---:|---:|" + "---|" * (len(labels) + 1),
    ]
    for n in rows:
        for c in concurrency:
            cells, ratios = [], []
            for lb in labels:
                r = all_results[lb]
                if "error" in r:
                    cells.append(f"not run: {r['error']}")
                    continue
                cells.append(_cell(r[(n, c)]))
                if "error" not in kfops and not lb.startswith("kfops"):
                    ratios.append(f"{kfops[(n, c)]['rps'] / r[(n, c)]['rps']:.1f}x {lb.split()[0]}")
            lines.append(f"| {n} | {c} | " + " | ".join(cells) + f" | {', '.join(ratios) or '-'} |")
    lines.append("")
    for n in rows:
        sk, fast = floors[n]
        line = (
            f"In-process floor on {n} row(s): pipeline.predict {sk:.2f} ms, kfops' compiled "
            f"predict {fast:.3f} ms"
        )
        if "error" not in kfops and (n, 1) in kfops:
            p50 = kfops[(n, 1)]["p50"]
            line += (
                f"; kfops V2 p50 at concurrency 1: {p50:.2f} ms ({p50 / sk:.2f}x pipeline.predict,"
                f" {p50 / fast:.0f}x the compiled predict)"
            )
        lines.append(line + ".")
    if "error" not in kfops and (1, 8) in kfops:
        p99 = kfops[(1, 8)]["p99"]
        verdict = "met" if p99 < 5 else "NOT met"
        lines.append(
            f"Single rows at concurrency 8: kfops V2 p99 {p99:.2f} ms (target < 5 ms: {verdict})."
        )
    return "\n".join(lines)


# ---- wrk mode: an independent load generator, the default (HistGradientBoosting) model too ----

WRK_ROWS = (1, 100, 1000)
WRK_CONCURRENCY = (1, 8)
V2_DTYPES = {"int": "INT64", "float": "FP64", "bool": "BOOL", "string": "BYTES"}
# wrk's done() hook: one JSON line; wrk reports latencies in microseconds.
WRK_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]
done = function(s, latency, requests)
  local errors = s.errors.connect + s.errors.read + s.errors.write + s.errors.status
    + s.errors.timeout
  io.write(string.format(
    "KFOPS-WRK {\\"requests\\":%%d,\\"seconds\\":%%.6f,\\"p50\\":%%.3f,\\"p99\\":%%.3f," ..
    "\\"p999\\":%%.3f,\\"max\\":%%.3f,\\"errors\\":%%d}\\n",
    s.requests, s.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    latency:percentile(99.9) / 1e3, latency.max / 1e3, errors))
end
"""


def wrk_run(port: int, path: str, body: dict, concurrency: int, seconds: float, workdir: Path):
    """One closed-loop wrk run (one thread, `concurrency` keep-alive connections)."""
    script = workdir / "wrk.lua"
    script.write_text(WRK_LUA % json.dumps(body))
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "10s"]
    cmd += ["-s", str(script), f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("KFOPS-WRK "))
    r = json.loads(line.split(" ", 1)[1])
    r["rps"] = r["requests"] / r["seconds"]
    return r


def train_default_model(workdir: Path) -> Path:
    """The model `make run` trains (HistGradientBoosting on builtin:churn), in its own store."""
    store = workdir / "hgb-store"
    subprocess.run(
        [sys.executable, "-m", "kfops.cli", "run", "--store", str(store)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return store


def schema_rows(version_dir: Path, n: int) -> tuple[schema.Schema, list[dict]]:
    """The first n rows of the version's reference data, feature columns only, as JSON values."""
    spec = schema.Schema.load(version_dir / SCHEMA_FILE)
    frame = pd.read_parquet(version_dir / REFERENCE_FILE)[[c.name for c in spec.features]]
    return spec, json.loads(frame.head(n).to_json(orient="records"))


def v2_schema_body(spec: schema.Schema, rows: list[dict], mlserver: bool) -> dict:
    """A V2 JSON request for any schema (MLServer asked to decode it as a pandas frame)."""
    inputs = []
    for c in spec.features:
        tensor = {"name": c.name, "shape": [len(rows)], "datatype": V2_DTYPES[c.dtype]}
        tensor["data"] = [r[c.name] for r in rows]
        if mlserver and c.dtype == "string":
            tensor["parameters"] = {"content_type": "str"}
        inputs.append(tensor)
    return (
        {"parameters": {"content_type": "pd"}, "inputs": inputs} if mlserver else {"inputs": inputs}
    )


def wrk_models(args, workdir: Path) -> dict:
    """model label -> (version dir, kfops server command extras, served schema)."""
    lin = workdir / "linear"
    lin.mkdir()
    build_model(lin)[1].to_parquet(lin / REFERENCE_FILE)  # rows for the requests
    out = {
        "linear": (lin, ["--model-dir", str(lin), "--log-sample-rate", "0", "--poll-interval", "0"])
    }
    store = Path(args.hgb_store) if args.hgb_store else train_default_model(workdir)
    version = max((store / "models" / "churn").glob("[0-9]*"), key=lambda p: int(p.name))
    # As `kfops serve --store ... --name churn` runs by default: registry, inference log on.
    out["hgb"] = (version, ["--store", str(store)])
    return out


def start_kfops_with(port: int, extra: list[str], stderr=subprocess.DEVNULL) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "kfops.cli", "serve", "--name", "churn", "--port", str(port)]
    return subprocess.Popen(
        cmd + extra, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
    )


def start_mlserver_for(venv: Path, version_dir: Path, port: int, workdir: Path) -> subprocess.Popen:
    """MLServer on the same joblib (kfops' pickled helper functions importable from this repo)."""
    msdir = workdir / f"mlserver-{version_dir.name}-{port}"
    msdir.mkdir()
    (msdir / MODEL_FILE).write_bytes((version_dir / MODEL_FILE).read_bytes())
    repo = str(Path(__file__).resolve().parents[1])
    return start_mlserver(venv, msdir, port, env={**os.environ, "PYTHONPATH": repo})


def wrk_main(args) -> None:
    """Every model x rows x concurrency, kfops V1 and MLServer V2 interleaved, medians."""
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: make wrk (Debian's wrk)")
    with tempfile.TemporaryDirectory(prefix="kfops-bench-wrk-") as tmp:
        workdir = Path(tmp)
        ml = Path(args.mlserver_venv)
        results = {}
        for label, (version_dir, extra) in wrk_models(args, workdir).items():
            procs = {"kfops V1": (start_kfops_with(port := free_port(), extra), port)}
            if (ml / "bin" / "mlserver").exists():
                port = free_port()
                procs["MLServer V2"] = (start_mlserver_for(ml, version_dir, port, workdir), port)
            try:
                results[label] = _wrk_model(args, workdir, version_dir, procs)
            finally:
                for proc, _ in procs.values():
                    stop(proc)
        print()
        print(wrk_report(results))
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"\n{os.cpu_count()} CPUs; load average (1/5/15 min) at the end: {load}.")


def _wrk_model(args, workdir: Path, version_dir: Path, procs: dict) -> dict:
    ready = {"kfops V1": "/v2/health/ready", "MLServer V2": "/v2/models/churn/ready"}
    paths = {"kfops V1": "/v1/models/churn:predict", "MLServer V2": "/v2/models/churn/infer"}
    up = {}
    for name, (proc, port) in procs.items():
        if wait_ready(proc, f"http://127.0.0.1:{port}{ready[name]}"):
            up[name] = port
        else:
            print(f"  {name} did not become ready (exit code {proc.poll()})", flush=True)
    out = {name: {} for name in up}
    for n in args.rows:
        spec, rows = schema_rows(version_dir, n)
        bodies = {"kfops V1": {"instances": rows}, "MLServer V2": v2_schema_body(spec, rows, True)}
        for name, port in up.items():  # warm-up (and a check that the server answers)
            wrk_run(port, paths[name], bodies[name], 2, 1, workdir)
        for c in args.concurrency:
            runs = {name: [] for name in up}
            for _ in range(args.repeat):
                for name, port in up.items():
                    r = wrk_run(port, paths[name], bodies[name], c, args.seconds, workdir)
                    r["load"] = os.getloadavg()[0]
                    runs[name].append(r)
                    print(
                        f"  {version_dir.name} {name:12s} rows={n:4d} c={c}: {_wrk_cell(r, n)}",
                        flush=True,
                    )
            for name, rs in runs.items():
                out[name][(n, c)] = _median(rs)
    return out


def _wrk_cell(r: dict, n: int) -> str:
    errors = f" {r['errors']:.0f} err" if r["errors"] else ""
    return (
        f"{r['rps']:.0f} req/s, {r['rps'] * n:.0f} rows/s "
        f"({r['p50']:.2f}/{r['p99']:.2f}/{r['p999']:.2f}/{r['max']:.1f}){errors}"
    )


def wrk_report(results: dict) -> str:
    """Markdown per model: req/s, rows/s and p50/p99/p99.9/max ms per server, kfops/MLServer."""
    lines = []
    for label, by_server in results.items():
        names = list(by_server)
        head = " | ".join(f"{s} req/s, rows/s (p50/p99/p99.9/max ms)" for s in names)
        lines += [f"**{label}**", "", f"| rows | conc | {head} | kfops / MLServer req/s |"]
        lines.append("|---:|---:|" + "---|" * (len(names) + 1))
        keys = next(iter(by_server.values()), {}).keys()
        for n, c in keys:
            cells = [_wrk_cell(by_server[s][(n, c)], n) for s in names]
            ratio = "-"
            if {"kfops V1", "MLServer V2"} <= set(names):
                kf, ms = by_server["kfops V1"][(n, c)], by_server["MLServer V2"][(n, c)]
                ratio = f"{kf['rps'] / ms['rps']:.1f}x"
            lines.append(f"| {n} | {c} | " + " | ".join(cells) + f" | {ratio} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--loadgen":
        loadgen_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each run")
    parser.add_argument("--max-requests", type=int, default=20000, help="cap per run")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per cell, interleaved; cells show medians"
    )
    parser.add_argument("--rows", type=int, nargs="+", help="rows per request")
    parser.add_argument("--concurrency", type=int, nargs="+")
    parser.add_argument("--mlserver-venv", default="/tmp/venv-mlserver")
    parser.add_argument("--kserve-venv", default="/tmp/venv-kserve")
    parser.add_argument(
        "--wrk", action="store_true", help="load with wrk; the linear and the default HGB model"
    )
    parser.add_argument("--hgb-store", help="--wrk: a store `kfops run` trained (default: train)")
    args = parser.parse_args()
    if args.wrk:
        args.rows, args.concurrency = args.rows or WRK_ROWS, args.concurrency or WRK_CONCURRENCY
        wrk_main(args)
        return
    args.rows, args.concurrency = args.rows or list(ROWS), args.concurrency or list(CONCURRENCY)
    with tempfile.TemporaryDirectory(prefix="kfops-bench-serving-") as tmp:
        workdir = Path(tmp)
        pipe, df = build_model(workdir)
        expected = pipe.predict(df.head(100)).tolist()
        procs = {
            name: (start(port), port)
            for name, start in servers(args, workdir).items()
            for port in [free_port()]
        }
        try:
            ports = {}
            for name, (proc, port) in procs.items():
                ready = next(t[1] for t in TARGETS.values() if t[0] == name)
                up = wait_ready(proc, f"http://127.0.0.1:{port}{ready}")
                ports[name] = port if up else f"did not become ready (exit code {proc.poll()})"
            results, floors = run_all(check_targets(ports, df, expected), args, workdir, df, pipe)
        finally:
            for proc, _ in procs.values():
                stop(proc)
        print()
        print(report(results, floors, args.rows, args.concurrency))
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"\n{os.cpu_count()} CPUs; load average (1/5/15 min) at the end: {load}.")


if __name__ == "__main__":
    main()
