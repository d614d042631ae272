"""Speed of kfops' monitoring vs Evidently's default preset: 1M logged rows vs a 100k reference.

Same data, one run, two windows (no drift, and drift 0.3 as in bench/drift.py):
- evidently default: `Report([DataDriftPreset()])` on the full window and the full reference,
  columns auto-typed, restricted to what kfops tests too (the model's features and its logged
  prediction and probability) so the comparison is like for like; the reference predictions are
  computed before the clock starts, which favours this side.
- kfops warm: `kfops.monitor.monitor` with the default MonitorConfig: the reference summary read
  from the store cache, a 20 000-row uniform sample of the window, explicit column types.
- kfops cold: the same plus building the summary (model predictions on the 100k reference,
  quantile sketch) and caching it, i.e. the first run after a new champion.
Each timing includes the HTML report; both wall and CPU seconds are printed, because on a shared
machine the CPU time of the process is the steadier figure. Equal detection: both sides must flag
the same feature columns and reach the same retrain decision (kfops' rule applied to Evidently's
column verdicts).

Run: nice -n 10 .venv/bin/python bench/monitor_speed.py [--rows 1000000] [--reference 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import pandas as pd
from evidently import Dataset, Report
from evidently.presets import DataDriftPreset

from kfops import datasets, logschema, monitor, train
from kfops.monitor import reference
from kfops.store import local
from kfops.validate import infer

PVALUE_WORDS = ("p_value", "test")


def champion():
    data = datasets.churn(20_000, seed=999)
    data_schema = infer.infer_schema(data, label="churned")
    cfg = train.TrainConfig(label="churned", search_iterations=1, cv_folds=2, seed=0)
    return train.train(data, data_schema, cfg).pipeline, data_schema


class Clock:
    """Wall and CPU seconds of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def evidently_default(ref: pd.DataFrame, cur: pd.DataFrame, cols: list[str]) -> tuple[Clock, dict]:
    """Timing and column -> drifted, for Evidently's default preset with its own choices."""
    clock = Clock().__enter__()
    snap = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur[cols]), Dataset.from_pandas(ref[cols])
    )
    snap.get_html_str(as_iframe=False)
    clock.__exit__()
    verdicts = {}
    for metric in snap.dict()["metrics"]:
        conf = metric["config"]
        if conf["type"].endswith(":ValueDrift"):
            pvalue = any(w in conf["method"] for w in PVALUE_WORDS)
            score = float(metric["value"])
            verdicts[conf["column"]] = (
                score,
                score < conf["threshold"] if pvalue else score >= conf["threshold"],
            )
    return clock, verdicts


def kfops_run(store, pipe, data_schema, ref_rows: pd.DataFrame, cur: pd.DataFrame, cold: bool):
    """Timing and result of kfops' monitor, with the summary cached (warm) or built (cold)."""
    cfg = monitor.MonitorConfig()
    kinds = {
        **reference.column_kinds(data_schema),
        logschema.PREDICTION: "cat",
        logschema.PROBA: "num",
    }
    key = reference.cache_key("churn", "1", "bench", {"rows": cfg.reference_rows})
    clock = Clock().__enter__()
    if cold:
        scored = reference.with_predictions(ref_rows, pipe, data_schema.feature_names)
        reference.save_cached(store, key, reference.summarise(scored, kinds, cfg.reference_rows))
    summary = reference.load_cached(store, key)
    result = monitor.monitor(summary, cur, data_schema, cfg)
    clock.__exit__()
    return clock, result


def log_frame(pipe, features: list[str], rows: int, drift: float) -> pd.DataFrame:
    frame = datasets.churn(rows, seed=2, drift=drift)
    out = frame[features].copy()
    out[logschema.PREDICTION] = pipe.predict(out)
    out[logschema.PROBA] = pipe.predict_proba(out[features])[:, -1]
    out[logschema.REQUEST_ID] = frame["customer_id"].to_numpy()
    out[logschema.TIMESTAMP] = pd.Timestamp("2024-07-01", tz="UTC") + pd.to_timedelta(
        range(rows), unit="s"
    )
    out[logschema.MODEL_VERSION] = "1"
    return out


def compare(name: str, ev: dict, result, features: list[str], threshold: float) -> bool:
    ev_drifted = sorted(c for c in features if ev[c][1])
    ev_retrain = len(ev_drifted) / len(features) >= threshold
    same = ev_drifted == sorted(result.drifted_columns) and ev_retrain == result.retrain
    diffs = [abs(ev[c][0] - result.columns[c].score) for c in features]
    print(f"  {name}: evidently drifted {ev_drifted} retrain={ev_retrain}")
    print(f"  {name}: kfops     drifted {sorted(result.drifted_columns)} retrain={result.retrain}")
    print(f"  {name}: max |score difference| {max(diffs):.4f} (DKW bound of the sample: "
          f"{result.sample_error_bound:.4f}); same detection: {same}")  # fmt: skip
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference", type=int, default=100_000)
    parser.add_argument("--drift", type=float, default=0.3)
    args = parser.parse_args()
    pipe, data_schema = champion()
    features = data_schema.feature_names
    ref_rows = datasets.churn(args.reference, seed=1)
    ref_scored = reference.with_predictions(ref_rows, pipe, features)
    cols = [*features, logschema.PREDICTION, logschema.PROBA]
    rows, all_same = [], True
    with tempfile.TemporaryDirectory() as tmp:
        store = local.LocalStore(tmp)
        for drift in (0.0, args.drift):
            cur = log_frame(pipe, features, args.rows, drift)
            ev_t, ev = evidently_default(ref_scored, cur, cols)
            cold_t, _ = kfops_run(store, pipe, data_schema, ref_rows, cur, cold=True)
            warm_t, result = kfops_run(store, pipe, data_schema, ref_rows, cur, cold=False)
            all_same &= compare(f"drift {drift}", ev, result, features, 0.3)
            rows.append((drift, ev_t, cold_t, warm_t))
    print(
        f"\n{args.rows} logged rows vs {args.reference} reference rows, {len(cols)} columns tested"
    )
    print(f"{'drift':>6} {'clock':>5} {'evidently s':>12} {'kfops cold s':>13} "
          f"{'kfops warm s':>13} {'cold x':>7} {'warm x':>7}")  # fmt: skip
    for drift, ev, cold, warm in rows:
        for kind in ("wall", "cpu"):
            e, c, w = (getattr(t, kind) for t in (ev, cold, warm))
            print(f"{drift:>6.2f} {kind:>5} {e:>12.2f} {c:>13.2f} {w:>13.2f} "
                  f"{e / c:>7.1f} {e / w:>7.1f}")  # fmt: skip
    print(f"equal detection on every window: {all_same}")


if __name__ == "__main__":
    main()
