"""What explanations add to the evaluate step: the step's work with and without them.

A HistGradientBoosting model is trained as the pipeline trains it (defaults, small search) on
20k rows of builtin:churn; the test split is N other rows. The evaluate step's work is timed
with `explain` on and off, alternating, best of --repeat each: `kfops.evaluate.evaluate` (model
and baseline scored, slices by region, fairness by age_band, curves, and with explain the
permutation importance on a 5000-row sample, per-class metrics, worst slices and confidently
wrong rows) plus rendering the HTML report. Reading and writing Parquet are left out, so the
share is of a smaller total than the real step's (a stricter test).

Target (issue #19): explanations add at most 20 % at 1M rows.

Run on an idle machine: nice -n 10 .venv/bin/python bench/evaluate.py --rows 1000000
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

from kfops import cpus, datasets, evaluate, train
from kfops.evaluate import core, explain
from kfops.reports import evaluation as report
from kfops.validate import infer

TARGET = 0.20


def _model():
    data = datasets.churn(20_000, seed=999)
    data_schema = infer.infer_schema(data, label="churned")
    cfg = train.TrainConfig(label="churned", search_iterations=1, cv_folds=2, seed=0)
    return train.train(data, data_schema, cfg), data_schema


def _step(result, test, cfg) -> float:
    start = time.perf_counter()
    ev = evaluate.evaluate(result.pipeline, test, cfg, baseline=result.baseline)
    report.evaluation_html(ev)
    return time.perf_counter() - start


def _explain_alone(result, test, cfg) -> float:
    """The explanations' own time on the step's one prediction (robust to load swings)."""
    scored = core._score(result.pipeline, test, cfg, cpus.resolve(cfg.n_threads))
    ev = evaluate.evaluate(result.pipeline, test.iloc[:1000], cfg)  # slices of the right shape
    start = time.perf_counter()
    explain.explain(
        result.pipeline,
        test,
        scored,
        task=cfg.task,
        label=cfg.label,
        slices=ev.slices,
        id_columns=cfg.id_columns,
        config=explain.ExplainConfig(rows=cfg.explain_rows, n_threads=cpus.resolve(cfg.n_threads)),
    )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="0 = the CPUs the step may use")
    args = parser.parse_args(argv)
    result, data_schema = _model()
    print(f"CPUs {cpus.available()}, threads {cpus.resolve(args.threads)}")
    verdicts = []
    for rows in args.rows:
        test = datasets.churn(rows, seed=1)
        on = evaluate.config_for(data_schema, slice_columns=["region"], sensitive_column="age_band")
        on = dataclasses.replace(on, n_threads=args.threads)
        off = dataclasses.replace(on, explain=False)
        print(f"rows {rows}: load average before {os.getloadavg()[0]:.2f}")
        times = {"with": [], "without": [], "alone": []}
        for i in range(args.repeat):  # alternate the order, so drifting load hits both
            for kind in ("without", "with") if i % 2 == 0 else ("with", "without"):
                times[kind].append(_step(result, test, on if kind == "with" else off))
            times["alone"].append(_explain_alone(result, test, on))
        best_on, best_off = min(times["with"]), min(times["without"])
        alone = min(times["alone"])
        added = best_on / best_off - 1
        ok = added <= TARGET
        verdicts.append(ok)
        print(
            f"rows {rows}: evaluate without explanations {best_off:.2f} s, with {best_on:.2f} s "
            f"(best of {args.repeat}): +{added:.1%} (target <= {TARGET:.0%}: "
            f"{'met' if ok else 'MISSED'}); the explanations alone {alone:.2f} s "
            f"(+{alone / best_off:.1%}); load average after {os.getloadavg()[0]:.2f}"
        )
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
