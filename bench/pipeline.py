"""Benchmark: the local kfops training pipeline vs an equivalent bare scikit-learn script.

Both read the same Parquet file of builtin:churn, check the data, split it stratified, run the same
seeded randomized search (8 candidates x 3 folds on <= 50k rows) of a HistGradientBoosting pipeline,
refit on all training rows, evaluate on the test split and write the model. The pipeline does more
(schema inference, leakage check, slices, fairness, reports, registry push), and pays a process per
step plus Parquet hand-offs; the targets say how much that may cost:

- wall time: pipeline <= 1.3x the bare script at 1M rows, <= 1.5x at 100k (issues 16, 17);
- peak RSS of the largest step <= 2.5x the dataset's in-memory size at 1M rows;
- the same ROC AUC on both sides.

Usage: python bench/pipeline.py [--rows 100000 1000000] [--steps] [--threads N] [--profile DIR]
(--steps: the bare script's phase times and each kfops process's wall, in-step and CPU seconds;
--threads 1 pins both sides to one thread, so on a loaded machine CPU seconds compare work;
--profile: a cProfile of each kfops step, written into DIR.)
Each side runs in a fresh child process. Printed per side: the load average before and after (a
run on a loaded machine says nothing about the targets), the threads it used (the bare script:
the OpenMP threads scikit-learn gives HistGradientBoosting; kfops: the train step's threads and
search processes and the evaluate step's threads, from the run's step records) and ROC AUC on the
test split. Each process of the pipeline (the steps kfp.local starts, the search's worker
processes) appends its own peak RSS to a file at exit, through a `sitecustomize` put on
PYTHONPATH for the run only; the largest step's peak is compared with the frame's in-memory size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

# The environment as the user started the bench, taken before kfops is imported: `import kfops`
# sets OMP_WAIT_POLICY=PASSIVE in its own process (kfops/__init__.py), and a bare script must not
# inherit kfops' defaults (with PASSIVE it ran 2.3x slower on the idle machine).
USER_ENV = dict(os.environ)

BARE = textwrap.dedent(
    """
    import json, os, resource, sys, time
    import joblib, numpy as np, pandas as pd
    from sklearn import metrics
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import RandomizedSearchCV, train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    src, out = sys.argv[1], sys.argv[2]
    t0 = time.perf_counter(); phases = {}

    def phase(name, since=[t0]):
        now = time.perf_counter(); phases[name] = round(now - since[0], 2); since[0] = now

    df = pd.read_parquet(src); phase("read")
    # checks a careful script makes: label present, two classes, null rates, duplicates
    assert df["churned"].nunique() == 2
    nulls = df.isna().mean(); dupes = int(df.duplicated().sum()); phase("check")
    y = df.pop("churned"); X = df.drop(columns=["customer_id", "signup_date"])
    cats = [c for c in X.columns if X[c].dtype == object or str(X[c].dtype) in ("category", "bool")]
    nums = [c for c in X.columns if c not in cats]
    X[cats] = X[cats].astype(str)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    phase("split")
    pre = ColumnTransformer([("cat", OrdinalEncoder(handle_unknown="use_encoded_value",
                                                    unknown_value=-1), cats),
                             ("num", "passthrough", nums)])
    model = Pipeline([("pre", pre), ("est", HistGradientBoostingClassifier(
        max_iter=200, early_stopping="auto", random_state=0,
        categorical_features=list(range(len(cats)))))])
    # the same search space, budget and sample size kfops.train uses for this estimator
    space = {"est__learning_rate": [0.05, 0.1, 0.2], "est__max_leaf_nodes": [15, 31, 63],
             "est__min_samples_leaf": [10, 20, 50, 100], "est__l2_regularization": [0.0, 0.1, 1.0]}
    sample = Xtr.sample(n=min(50_000, len(Xtr)), random_state=0)
    search = RandomizedSearchCV(model, space, n_iter=8, cv=3, scoring="roc_auc", random_state=0,
                                n_jobs=1)
    search.fit(sample, ytr.loc[sample.index]); phase("search")
    model.set_params(**search.best_params_).fit(Xtr, ytr); phase("fit")
    p = model.predict_proba(Xte)[:, 1]; pred = (p >= 0.5).astype(int); phase("predict")
    m = {"roc_auc": metrics.roc_auc_score(yte, p),
         "pr_auc": metrics.average_precision_score(yte, p),
         "f1": metrics.f1_score(yte, pred), "accuracy": metrics.accuracy_score(yte, pred),
         "log_loss": metrics.log_loss(yte, p)}
    joblib.dump(model, out + "/model.joblib"); json.dump(m, open(out + "/metrics.json", "w"))
    phase("metrics, write"); use = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": time.perf_counter() - t0, "roc_auc": m["roc_auc"],
                      "phases": phases, "cpu_s": use.ru_utime + use.ru_stime,
                      "threads": f"{_openmp_effective_n_threads()} OpenMP, OMP_WAIT_POLICY="
                           f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}",
                      "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
    """
)

PIPELINE = textwrap.dedent(
    """
    import io, json, os, resource, sys, time, contextlib
    from kfops import cli
    src, out = sys.argv[1], sys.argv[2]
    pinned = os.environ.get("KFOPS_BENCH_THREADS")
    pinned = ["--param", f"n_threads={pinned}"] if pinned else []
    t0 = time.perf_counter()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(["run", "--source", src, "--label", "churned", "--slice", "region",
                         "--slice", "plan", "--sensitive", "age_band", "--store", out + "/store",
                         "--runs-dir", out + "/runs", "--json", *pinned])
    seconds = time.perf_counter() - t0
    summary = json.loads(buf.getvalue())
    from kfops import runs, store
    detail = runs.RunIndex(store.open_store(out + "/store")).show(summary["run_id"])
    ran = {s["step"]: s.get("runtime", {}) for s in detail["steps"]}
    from kfops.localrun import _seconds
    inside = {s["step"]: round(_seconds(s), 2) for s in detail["steps"]}
    threads = (f"train {ran.get('train', {}).get('threads')} threads x "
               f"{ran.get('train', {}).get('search_processes')} search processes, "
               f"evaluate {ran.get('evaluate', {}).get('threads')}")
    print(json.dumps({"seconds": seconds, "code": code, "status": summary["status"],
                      "blessed": summary["blessed"], "roc_auc": summary["metrics"].get("roc_auc"),
                      "threads": threads, "inside": inside,
                      "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
    """
)


# Every Python process started with this on PYTHONPATH appends its own peak RSS at exit, named by
# the step it ran (kfp's executor gets --function_to_execute NAME) or by its command.
PEAK_HOOK = textwrap.dedent(
    """
    import atexit, json, os, resource, sys, time

    _T0 = time.perf_counter()
    # a step forked from kfops' warm process (kfops/warm_steps.py) starts its clock at the fork
    os.register_at_fork(after_in_child=lambda: globals().update(_T0=time.perf_counter()))
    _PROFILE = None
    if os.environ.get("KFOPS_BENCH_PROFILE") and "--function_to_execute" in sys.argv:
        import cProfile
        _PROFILE = cProfile.Profile()
        _PROFILE.enable()

    def _peak():
        argv = list(sys.argv)
        if "--function_to_execute" in argv:
            name = argv[argv.index("--function_to_execute") + 1]
        elif any("loky" in a for a in argv):
            name = "search worker"
        elif "kfops.cli" in sys.modules:
            name = "kfops run (orchestrator)"
        else:
            name = "other: " + os.path.basename(argv[0] if argv else "?")
        if _PROFILE is not None:
            _PROFILE.disable()
            _PROFILE.dump_stats(os.path.join(os.environ["KFOPS_BENCH_PROFILE"], name + ".prof"))
        use = resource.getrusage(resource.RUSAGE_SELF)
        rows = [{"process": name, "maxrss_kb": use.ru_maxrss, "wall_s": time.perf_counter() - _T0,
                 "cpu_s": use.ru_utime + use.ru_stime}]
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        if "--function_to_execute" in argv and kids.ru_maxrss:
            # a step's child processes, e.g. train's forked search workers, which leave by
            # os._exit (no atexit line of their own): the largest one's peak (pages shared with
            # the step included; a fork-and-exec child's peak is the step's at the fork) and
            # their CPU
            rows.append({"process": name + " (children)", "maxrss_kb": kids.ru_maxrss,
                         "wall_s": 0.0, "cpu_s": kids.ru_utime + kids.ru_stime})
        with open(os.environ["KFOPS_BENCH_PEAKS"], "a") as f:
            f.writelines(json.dumps(row) + "\\n" for row in rows)

    atexit.register(_peak)
    """
)


def measure(script: str, source: Path, workdir: Path, env: dict | None = None) -> dict:
    """Runs one script in a fresh interpreter; its JSON line plus the load average around it."""
    workdir.mkdir(parents=True, exist_ok=True)
    before = os.getloadavg()[0]
    done = subprocess.run(
        [sys.executable, "-c", script, str(source), str(workdir)],
        capture_output=True,
        text=True,
        check=False,
        env={**USER_ENV, **(env or {})},
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return {**out, "load": f"{before:.1f}->{os.getloadavg()[0]:.1f}"}


def step_peaks(workdir: Path) -> dict:
    """The pipeline run with the peak-RSS hook: its JSON line and each process's peak (MiB)."""
    hook = workdir / "hook"
    hook.mkdir(parents=True)
    (hook / "sitecustomize.py").write_text(PEAK_HOOK)
    peaks = workdir / "peaks.jsonl"
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH")) if p)
    return {"env": {"PYTHONPATH": path, "KFOPS_BENCH_PEAKS": str(peaks)}, "file": peaks}


def processes(peaks_file: Path) -> list[dict]:
    """What the hook wrote: one row per process of the run (name, peak, wall and CPU seconds)."""
    return [json.loads(line) for line in peaks_file.read_text().splitlines() if line.strip()]


def largest(rows: list[dict]) -> tuple[str, float]:
    """The process with the highest peak RSS, and that peak in MiB.

    Not a step's "(children)" row: a forked search worker's RSS counts every page it shares
    with the step (the whole frame at 1M rows) as its own, so it would report the step's memory
    twice over; its private part is the fits on the search sample (<= 50k rows).
    """
    top = max(
        (r for r in rows if not r["process"].endswith(" (children)")), key=lambda r: r["maxrss_kb"]
    )
    return top["process"], top["maxrss_kb"] / 1024


def breakdown(bare: dict, kf: dict, rows: list[dict]) -> None:
    """Where each side's time went: the bare script's phases, each kfops process's wall and CPU.

    A step's wall is its process's life (interpreter start-up, kfp's executor, the step);
    "inside" is the step's own record (started_at..ended_at, the work alone).
    """
    print("  bare phases s: " + ", ".join(f"{k} {v}" for k, v in bare["phases"].items())
          + f"; CPU {bare['cpu_s']:.1f} s")  # fmt: skip
    print(f"  {'kfops process':<26} {'wall s':>7} {'inside s':>8} {'CPU s':>7} {'peak MiB':>9}")
    for r in rows:
        inside = kf.get("inside", {}).get(r["process"].removesuffix("_step").replace("_", "-"))
        print(f"  {r['process']:<26} {r['wall_s']:>7.1f} {inside if inside is not None else '':>8} "
              f"{r['cpu_s']:>7.1f} {r['maxrss_kb'] / 1024:>9.0f}")  # fmt: skip
    print(f"  {'all processes':<26} {'':>7} {'':>8} {sum(r['cpu_s'] for r in rows):>7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--steps", action="store_true", help="print each side's per-phase / per-process times"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="OMP_NUM_THREADS for the bare side and n_threads for kfops (default: all CPUs); "
        "1 on a loaded machine compares CPU work rather than parallel speed",
    )
    parser.add_argument(
        "--profile", type=Path, help="also write a cProfile of each kfops step into this directory"
    )
    args = parser.parse_args()
    from kfops import dataio, datasets

    print(
        f"{'rows':>9} {'data MiB':>9} {'bare s':>8} {'kfops s':>8} {'time x':>7} "
        f"{'bare MiB':>9} {'step MiB':>9} {'mem/data':>9} {'auc bare':>9} {'auc kfops':>9}  "
        "largest step; load average before->after (bare, kfops); threads (bare; kfops)"
    )
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="kfops-bench-") as tmp:
            tmp = Path(tmp)
            df = datasets.churn(n_rows=rows, seed=0)
            data_mib = df.memory_usage(deep=True).sum() / 2**20
            dataio.write_frame(df, tmp / "churn.parquet")
            del df
            pinned = {"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}
            bare = measure(BARE, tmp / "churn.parquet", tmp / "bare", pinned)
            hook = step_peaks(tmp / "peaks")
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
                hook["env"]["KFOPS_BENCH_PROFILE"] = str(args.profile.resolve())
                hook["env"]["KFOPS_COLD_STEPS"] = "1"  # the hook profiles a process from its start
            if args.threads:
                hook["env"]["KFOPS_BENCH_THREADS"] = str(args.threads)
            kf = measure(PIPELINE, tmp / "churn.parquet", tmp / "kfops", hook["env"])
            if kf["status"] != "succeeded":
                raise SystemExit(f"pipeline failed: {kf}")
            ran = processes(hook["file"])
            step, step_mib = largest(ran)
            print(
                f"{rows:>9} {data_mib:>9.1f} {bare['seconds']:>8.1f} {kf['seconds']:>8.1f} "
                f"{kf['seconds'] / bare['seconds']:>7.2f} {bare['maxrss_kb'] / 1024:>9.0f} "
                f"{step_mib:>9.0f} {step_mib / data_mib:>9.2f} {bare['roc_auc']:>9.4f} "
                f"{kf['roc_auc']:>9.4f}  {step}; load {bare['load']}, {kf['load']}; "
                f"{bare['threads']}; {kf['threads']}",
                flush=True,
            )
            if args.steps:
                breakdown(bare, kf, ran)


if __name__ == "__main__":
    main()
