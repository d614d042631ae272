"""Benchmark: the local kfops training pipeline vs an equivalent bare scikit-learn script.

Both read the same Parquet file of builtin:churn, check the data, split it stratified, run the same
seeded randomized search (8 candidates x 3 folds on <= 50k rows) of a HistGradientBoosting pipeline,
refit on all training rows, evaluate on the test split and write the model. The pipeline does more
(schema inference, leakage check, slices, fairness, reports, registry push), and pays a process per
step plus Parquet hand-offs; the targets say how much that may cost:

- wall time: pipeline <= 1.3x the bare script at 1M rows, <= 1.5x at 100k (issues 16, 17);
- peak RSS of the largest step <= 2.5x the dataset's in-memory size at 1M rows;
- the same ROC AUC on both sides.

Usage: python bench/pipeline.py [--rows 100000 1000000]
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
    t0 = time.perf_counter()
    df = pd.read_parquet(src)
    # checks a careful script makes: label present, two classes, null rates, duplicates
    assert df["churned"].nunique() == 2
    nulls = df.isna().mean(); dupes = int(df.duplicated().sum())
    y = df.pop("churned"); X = df.drop(columns=["customer_id", "signup_date"])
    cats = [c for c in X.columns if X[c].dtype == object or str(X[c].dtype) in ("category", "bool")]
    nums = [c for c in X.columns if c not in cats]
    X[cats] = X[cats].astype(str)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
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
    search.fit(sample, ytr.loc[sample.index])
    model.set_params(**search.best_params_).fit(Xtr, ytr)
    p = model.predict_proba(Xte)[:, 1]; pred = (p >= 0.5).astype(int)
    m = {"roc_auc": metrics.roc_auc_score(yte, p),
         "pr_auc": metrics.average_precision_score(yte, p),
         "f1": metrics.f1_score(yte, pred), "accuracy": metrics.accuracy_score(yte, pred),
         "log_loss": metrics.log_loss(yte, p)}
    joblib.dump(model, out + "/model.joblib"); json.dump(m, open(out + "/metrics.json", "w"))
    print(json.dumps({"seconds": time.perf_counter() - t0, "roc_auc": m["roc_auc"],
                      "threads": f"{_openmp_effective_n_threads()} OpenMP, OMP_WAIT_POLICY="
                           f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}",
                      "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
    """
)

PIPELINE = textwrap.dedent(
    """
    import io, json, resource, sys, time, contextlib
    from kfops import cli
    src, out = sys.argv[1], sys.argv[2]
    t0 = time.perf_counter()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(["run", "--source", src, "--label", "churned", "--slice", "region",
                         "--slice", "plan", "--sensitive", "age_band", "--store", out + "/store",
                         "--runs-dir", out + "/runs", "--json"])
    seconds = time.perf_counter() - t0
    summary = json.loads(buf.getvalue())
    from kfops import runs, store
    detail = runs.RunIndex(store.open_store(out + "/store")).show(summary["run_id"])
    ran = {s["step"]: s.get("runtime", {}) for s in detail["steps"]}
    threads = (f"train {ran.get('train', {}).get('threads')} threads x "
               f"{ran.get('train', {}).get('search_processes')} search processes, "
               f"evaluate {ran.get('evaluate', {}).get('threads')}")
    print(json.dumps({"seconds": seconds, "code": code, "status": summary["status"],
                      "blessed": summary["blessed"], "roc_auc": summary["metrics"].get("roc_auc"),
                      "threads": threads,
                      "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
    """
)


# Every Python process started with this on PYTHONPATH appends its own peak RSS at exit, named by
# the step it ran (kfp's executor gets --function_to_execute NAME) or by its command.
PEAK_HOOK = textwrap.dedent(
    """
    import atexit, json, os, resource, sys

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
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with open(os.environ["KFOPS_BENCH_PEAKS"], "a") as f:
            f.write(json.dumps({"process": name, "maxrss_kb": kb}) + "\\n")

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


def largest(peaks_file: Path) -> tuple[str, float]:
    """The process with the highest peak RSS, and that peak in MiB."""
    rows = [json.loads(line) for line in peaks_file.read_text().splitlines() if line.strip()]
    top = max(rows, key=lambda r: r["maxrss_kb"])
    return top["process"], top["maxrss_kb"] / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
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
            bare = measure(BARE, tmp / "churn.parquet", tmp / "bare")
            hook = step_peaks(tmp / "peaks")
            kf = measure(PIPELINE, tmp / "churn.parquet", tmp / "kfops", hook["env"])
            if kf["status"] != "succeeded":
                raise SystemExit(f"pipeline failed: {kf}")
            step, step_mib = largest(hook["file"])
            print(
                f"{rows:>9} {data_mib:>9.1f} {bare['seconds']:>8.1f} {kf['seconds']:>8.1f} "
                f"{kf['seconds'] / bare['seconds']:>7.2f} {bare['maxrss_kb'] / 1024:>9.0f} "
                f"{step_mib:>9.0f} {step_mib / data_mib:>9.2f} {bare['roc_auc']:>9.4f} "
                f"{kf['roc_auc']:>9.4f}  {step}; load {bare['load']}, {kf['load']}; "
                f"{bare['threads']}; {kf['threads']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
