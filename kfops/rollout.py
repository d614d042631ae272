"""Shadow and canary rollouts: the challenger pointer, its logged traffic, and the verdict.

`start` writes `models/<name>/rollout.json` (compare-and-swap, like the champion pointer): which
version challenges the champion, in which mode (shadow: it answers every request off the
response path; canary: it answers a sticky share of requests) and since when. Servers that
follow the champion follow this pointer too (kfops.serving.challenger), so on a cluster a
rollout starts and ends without redeploying. Every request both versions answer during a
rollout is an event row under `rollouts/<name>/<date>/*.parquet` (EVENT_COLUMNS).

`compare` measures the pair on those events (agreement, latency percentiles, error rates,
prediction-distribution distance, and quality on the rows whose delayed labels arrived through
kfops.labels); `judge` applies the stated rule (RolloutRule) and answers promote, wait or abort;
`finish` ends the rollout: promotion moves the champion pointer through the registry, and either
way who, why and the evidence are kept in the pointer's history.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import math
import re
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kfops import approval, errors, labels, parameters, registry, schema
from kfops.store import base

SHADOW, CANARY = "shadow", "canary"
MODES = (SHADOW, CANARY)
RUNNING, PROMOTED, ABORTED = "running", "promoted", "aborted"
PROMOTE, WAIT, ABORT = "promote", "wait", "abort"
IDLE = "idle"  # a scheduled decision with no rollout running (`idle_reason`)
ROOT = "rollouts"
# Event columns (one row per answered request row; an error is one row with row -1).
CHAMPION, CHALLENGER = "kfops_champion", "kfops_challenger"  # the pair the event belongs to
VERSION, ROLE = "kfops_model_version", "kfops_role"  # who answered: champion, shadow or canary
SECONDS, ERROR = "kfops_seconds", "kfops_error"  # validate + predict time; error class or ""
PREDICTION, VALUE = "kfops_prediction", "kfops_value"  # as text; as float when numeric
TIMESTAMP = "kfops_timestamp"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")  # the date folder of events_key
EVENT_COLUMNS = (
    labels.REQUEST_ID, labels.ROW, CHAMPION, CHALLENGER, VERSION, ROLE, SECONDS, ERROR,
    PREDICTION, VALUE, TIMESTAMP,
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the server runs beside the champion.

    Attributes:
        version: the challenger's registered version.
        mode: "shadow" or "canary".
        share: canary only: the fraction of request keys the challenger answers.
        started_at: ISO time the rollout started; events before it belong to an older one.
    """

    version: str
    mode: str = SHADOW
    share: float = 0.1
    started_at: str = ""

    def __post_init__(self):
        if not self.version:
            raise errors.ConfigError("a rollout needs the challenger's version")
        if self.mode not in MODES:
            raise errors.ConfigError(f"rollout mode must be one of {MODES}, got {self.mode!r}")
        if not 0.0 <= self.share <= 1.0 or math.isnan(self.share):
            raise errors.ConfigError(f"canary share must be in [0, 1], got {self.share}")


@dataclasses.dataclass(frozen=True)
class RolloutRule:
    """The stated rule: promote only on enough traffic and a confidence bound, never a point."""

    min_requests: int = parameters.field(
        200, "challenger requests needed before any verdict (fewer: wait)"
    )
    min_labelled: int = parameters.field(
        100, "labelled challenger rows needed to judge quality (fewer: wait)"
    )
    confidence: float = parameters.field(
        0.95,
        "two-sided confidence of the intervals on error rates and the quality difference (they "
        "are confidence sequences, valid at every look however often status/decide runs) and "
        "on canary p99 latency (valid at one look)",
    )
    margin: float = parameters.field(
        0.0,
        "quality the challenger may lose: promote when the interval on challenger minus champion "
        "quality lies above -margin, abort when it lies below",
    )
    max_error_increase: float = parameters.field(
        0.01, "abort when the challenger's error rate is surely above the champion's plus this"
    )
    max_p99_ratio: float = parameters.field(
        1.5,
        "canary only: abort when the challenger's p99 latency is surely above this times the "
        "champion's; promote only once it is surely at most that (a shadow's seconds are "
        "batched compute, not latency: not judged)",
    )

    def __post_init__(self):
        if not 0.5 <= self.confidence < 1.0:
            raise errors.ConfigError(f"confidence must be in [0.5, 1), got {self.confidence}")
        if self.min_requests < 1 or self.min_labelled < 1:
            raise errors.ConfigError("min_requests and min_labelled must be >= 1")
        if self.margin < 0 or self.max_error_increase < 0:
            raise errors.ConfigError("margin and max_error_increase must be >= 0")
        if not self.max_p99_ratio > 0:  # also refuses NaN
            raise errors.ConfigError(f"max_p99_ratio must be > 0, got {self.max_p99_ratio}")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def start(
    reg: registry.Registry, name: str, plan: Plan, by: str, reason: str = ""
) -> dict[str, Any]:
    """Starts a rollout of `plan.version` against the current champion; returns the pointer.

    Raises:
        NotFound: no such version, or no champion to challenge.
        ConfigError: the version is the champion, or another rollout is running.
    """
    reg.manifest(name, plan.version)
    champion = reg.champion(name)
    if champion is None:
        raise errors.NotFound(f"model {name!r} has no champion to challenge; promote one first")
    if champion == plan.version:
        raise errors.ConfigError(f"version {plan.version} of {name!r} is already the champion")

    def change(current: dict | None) -> dict:
        current = current or {}
        if current.get("state") == RUNNING:
            raise errors.ConfigError(
                f"a rollout of {name!r} v{current['challenger']} is running since "
                f"{current['started_at']}: `kfops rollout promote|abort {name}` ends it first"
            )
        return {
            "state": RUNNING, "challenger": plan.version, "champion": champion,
            "mode": plan.mode, "share": plan.share, "started_at": _now(),
            "started_by": by, "reason": reason, "history": current.get("history", []),
        }  # fmt: skip

    return reg.swap_document(name, registry.ROLLOUT_FILE, change)


RULE_KEY = "rule"  # the pointer's record of the rule its rollout is judged by (`judged_by`)


def judged_by(name: str, doc: dict, rule: RolloutRule, given: Any = None) -> RolloutRule:
    """The rule the rollout `doc` is judged by: the one its pointer records, else `rule`.

    The error and quality intervals are confidence sequences for one confidence and one planned
    n (min_requests; min_labelled and the share, `_planned_pairs`): they hold at every look only
    if every look of one rollout uses the same ones, so `decide` records the whole rule in the
    pointer at its first look and every later status/decide/promote of that rollout judges with
    it (margin and the limits are fixed too: choosing them after seeing evidence is choosing the
    verdict). `given` names the fields the caller chose (the CLI: the flags passed; None: every
    field, as the scheduled step passes them all). A chosen value equal to the recorded one is
    fine, a field not chosen takes the recorded value, and a chosen value that differs is
    refused: a demanding user who typed `--min-labelled 500` wants that rule or to be told, not
    a silent other one. A new rule needs a new rollout (`kfops rollout abort`, then `start`).

    Raises:
        ConfigError: a chosen field differs from the recorded rule.
    """
    recorded = (doc or {}).get(RULE_KEY)
    if recorded is None:
        return rule
    asked = dataclasses.asdict(rule)
    chosen = asked if given is None else given
    differ = [k for k in asked if k in chosen and k in recorded and asked[k] != recorded[k]]
    if differ:
        said = ", ".join(f"{k}={recorded[k]!r} (asked {asked[k]!r})" for k in differ)
        raise errors.ConfigError(
            f"the rollout of {name!r} v{doc['challenger']} started {doc['started_at']} is judged "
            f"by the rule its first decide recorded: {said}; pass the recorded values (or omit "
            f"them), or `kfops rollout abort {name}` and start a new rollout to change the rule"
        )
    return RolloutRule(**{k: recorded.get(k, v) for k, v in asked.items()})


def _record_rule(reg: registry.Registry, name: str, doc: dict, rule: RolloutRule) -> None:
    """Writes `rule` into the running rollout's pointer (compare-and-swap) unless it has one.

    Raises:
        NotFound: the rollout ended (or another started) since `doc` was read.
        ConfigError: a concurrent decide recorded a different rule first.
    """

    def change(current: dict | None) -> dict:
        if running_plan(current) is None or current["started_at"] != doc["started_at"]:
            raise errors.NotFound(f"the rollout of {name!r} started {doc['started_at']} ended")
        judged_by(name, current, rule)
        return {**current, RULE_KEY: dataclasses.asdict(rule)}

    reg.swap_document(name, registry.ROLLOUT_FILE, change)


def pointer(reg: registry.Registry, name: str) -> dict[str, Any] | None:
    """The rollout pointer (running or ended), or None when no rollout ever started."""
    return reg.document(name, registry.ROLLOUT_FILE)


def running_plan(doc: dict | None) -> Plan | None:
    """The plan a server should run from a pointer document; None when nothing is running."""
    if not doc or doc.get("state") != RUNNING:
        return None
    return Plan(str(doc["challenger"]), doc["mode"], float(doc["share"]), doc["started_at"])


def running(reg: registry.Registry, name: str) -> dict[str, Any]:
    """The running rollout's pointer.

    Raises:
        NotFound: no rollout is running.
    """
    doc = pointer(reg, name)
    if running_plan(doc) is None:
        raise errors.NotFound(f"no rollout of {name!r} is running; `kfops rollout start` one")
    return doc


def events_key(name: str, when: dt.datetime, token: str) -> str:
    """Store key of one event file the server writes."""
    return f"{ROOT}/{name}/{when:%Y-%m-%d}/{when:%H%M%S}-{token}.parquet"


def read_events(store: base.Store, name: str, doc: dict[str, Any]) -> pd.DataFrame:
    """The events of the rollout `doc` describes: its pair of versions, since it started.

    Raises:
        DataError: a stored event file is not readable Parquet.
    """
    since = pd.Timestamp(doc["started_at"])
    since = since.tz_localize("UTC") if since.tzinfo is None else since.tz_convert("UTC")
    frames = []
    for key in sorted(store.list(f"{ROOT}/{name}/")):
        # A file is written after its events (events_key: the UTC day it was written), so one
        # from a day before the start holds only older rollouts' events: not downloaded.
        day = key.rsplit("/", 2)[-2] if key.count("/") >= 2 else ""
        if _DAY.fullmatch(day) and day < f"{since:%Y-%m-%d}":
            continue
        if key.endswith(".parquet"):
            try:
                frames.append(pq.read_table(io.BytesIO(store.get_bytes(key))).to_pandas())
            except (pa.ArrowInvalid, OSError) as e:
                raise errors.DataError(f"cannot read events {store.url_for(key)}: {e}") from e
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in EVENT_COLUMNS})
    out = pd.concat(frames, ignore_index=True)
    keep = (
        (out[CHAMPION] == str(doc["champion"]))
        & (out[CHALLENGER] == str(doc["challenger"]))
        & (out[TIMESTAMP] >= since)
    )
    return out[keep].reset_index(drop=True)


def task_of(reg: registry.Registry, name: str, version: str) -> str:
    """The version's task (classification or regression), from its registered schema."""
    with tempfile.TemporaryDirectory() as tmp:
        reg.fetch(name, version, tmp, files=[registry.SCHEMA_FILE])
        return schema.Schema.load(Path(tmp) / registry.SCHEMA_FILE).task


def compare(
    events: pd.DataFrame, truth: pd.DataFrame, doc: dict, task: str, rule: RolloutRule
) -> dict:
    """Measures champion against challenger on one rollout's events.

    Args:
        events: `read_events` output.
        truth: delayed labels (`kfops.labels.read`).
        doc: the rollout pointer (which versions, mode and canary share).
        task: "classification" (quality: accuracy) or "regression" (quality: minus the
            absolute error).
        rule: its confidence and planned traffic (min_requests, min_labelled) shape the
            confidence sequences (`sequence_z`).

    Returns:
        JSON-ready: per side (requests, rows, errors, error-rate interval, latency ms p50/p95/
        p99 with a distribution-free interval on p99, latency_kind: "response" (the answer's
        time) or "compute" (a shadow challenger's batched compute; never compare the two),
        labelled rows, quality), agreement (shadow), distance, quality difference interval,
        and `intervals` (which kind of interval: a confidence sequence, valid at every look).
    """
    sides = {"champion": str(doc["champion"]), "challenger": str(doc["challenger"])}
    rows = {k: events[events[VERSION] == v] for k, v in sides.items()}
    out: dict[str, Any] = {"mode": doc["mode"], "task": task, "intervals": INTERVALS}
    for side, frame in rows.items():
        kind = "compute" if side == "challenger" and doc["mode"] == SHADOW else "response"
        out[side] = {**_side(frame, sides[side], rule), "latency_kind": kind}
    answered = {k: f[f[ERROR] == ""] for k, f in rows.items()}
    out["agreement"] = _agreement(answered, task) if doc["mode"] == SHADOW else None
    out["distance"] = _distance(answered["champion"], answered["challenger"], task)
    scored = {k: _quality(labels.join(f, truth), task) for k, f in answered.items()}
    for side, q in scored.items():
        out[side]["labelled"] = len(q)
        out[side]["quality"] = float(q.mean()) if len(q) else None
    paired = doc["mode"] == SHADOW
    out["quality_difference"] = _difference(scored, paired, rule, _planned_pairs(doc, rule))
    return out


def _side(frame: pd.DataFrame, version: str, rule: RolloutRule) -> dict[str, Any]:
    per_request = frame.drop_duplicates([labels.REQUEST_ID, ROLE])
    n, failed = len(per_request), int((per_request[ERROR] != "").sum())
    ms = per_request[SECONDS].astype(float).to_numpy() * 1000
    pct = {f"p{q}_ms": float(np.percentile(ms, q)) if n else None for q in (50, 95, 99)}
    z = sequence_z(max(n, 1), rule.min_requests, rule.confidence)
    return {
        "version": version, "requests": n, "errors": failed,
        "error_rate": failed / n if n else None, "error_interval": wilson(failed, n, z), **pct,
        "p99_interval_ms": quantile_interval(ms, 0.99, rule.confidence),
    }  # fmt: skip


def quantile_interval(values, q: float, confidence: float) -> list[float | None]:
    """Distribution-free interval [X_(l), X_(u)] on the q-quantile from order statistics.

    With n independent values, the count below the true quantile is Binomial(n, q), so
    P(X_(l) > x_q) = P(Bin(n, q) <= l - 1) and P(X_(u) < x_q) <= P(Bin(n, q) >= u): l is the
    largest and u the smallest order making each at most a = (1 - confidence) / 2 (Hahn &
    Meeker, Statistical Intervals, 1991, sec. 5.2). A side without enough values to bound is
    None (for p99 at 95 %, an upper bound needs 368 values: 0.99^n <= 0.025). This interval is
    for one look at n, not a sequence, so repeated looks make both latency errors likelier: a
    false abort, and a promote of a canary whose p99 is at or just above the ratio (`judge`
    needs its upper bound under ratio x the champion's lower bound at one look). Simulated
    (lognormal latencies, 10 % canary, a look every 200 canary requests from 400 to 4000, quality
    taken as passed): true ratio 1.5, latency passed at some look in 2.55 % of 2000 rollouts
    against 0.4 % at the last look alone; 1.55: 0.35 %; 1.6: 0.05 %.
    """
    from scipy import stats  # noqa: PLC0415 (scipy is imported only where needed)

    x = np.sort(np.asarray(values, dtype=float))
    n, a = len(x), (1.0 - confidence) / 2
    if n == 0:
        return [None, None]
    dist = stats.binom(n, q)
    k = int(dist.ppf(a))  # smallest k with cdf(k) >= a; l - 1 is the largest k with cdf <= a
    below = k if dist.cdf(k) <= a else k - 1
    above = int(dist.ppf(1.0 - a)) + 1  # u: smallest with cdf(u - 1) >= 1 - a
    return [float(x[below]) if below >= 0 else None, float(x[above - 1]) if above <= n else None]


INTERVALS = (
    "anytime-valid asymptotic confidence sequences (Gaussian mixture, Waudby-Smith et al. 2024): "
    "each holds at every look at the stated confidence, however often the rule is applied"
)


def sequence_z(n, planned: float, confidence: float):
    """The multiplier z of the standard error that makes mean +- z sd / sqrt(n) hold at every n.

    mean +- z sd / sqrt(n) is then a confidence sequence: it covers the mean at every n at once,
    so looking at each new batch of traffic (every `kfops rollout decide`) keeps the stated
    confidence. n may be a numpy array.

    This is the Gaussian-mixture asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha,
    Kennedy & Ramdas, "Time-uniform central limit theory and asymptotic confidence sequences"
    (Annals of Statistics 2024, arXiv 2103.06476): mean +- sd * sqrt(2 (n rho2 + 1) / (n^2 rho2)
    * log(sqrt(n rho2 + 1) / a)); multiplied by sqrt(n) that is the z below. That boundary is
    two-sided at level a: the authors' R package (WannabeSmith/drconfseq, R/asymptotic_confseq.R)
    has it as std_conjmix_margin, and asymptotic_confseq passes its alpha to it unhalved. kfops
    takes a = (1 - confidence) / 2, so each one-sided miss (the lower end above the truth, as in
    a false promote; the upper end below it, a false abort) is at most (1 - confidence) / 2 at
    every look, as `judge` says; the two-sided coverage is then 1 - a (97.5 % at 0.95), not
    `confidence`: conservative. rho2 makes it tightest at the planned n: rho2 = (2 log(1/a) +
    log(1 + 2 log(1/a))) / planned, drconfseq's best_rho2_approx (asymptotic_confseq uses
    best_rho2_exact, the Lambert-W root: 9.75 / planned for 9.50 at a = 0.025, z the same to
    1e-4 at the planned n). At 95 % z is about 3.28 around the planned n (1.96 for one fixed-n
    look) and grows slowly (3.56 at 20x the plan).
    """
    a = (1.0 - confidence) / 2
    log_a = math.log(1 / a)
    rho2 = (2 * log_a + math.log(1 + 2 * log_a)) / max(float(planned), 1.0)
    nr = np.asarray(n, dtype=float) * rho2
    z = np.sqrt(2 * (nr + 1) / nr * np.log(np.sqrt(nr + 1) / a))
    return float(z) if np.ndim(z) == 0 else z


def _planned_pairs(doc: dict, rule: RolloutRule) -> float:
    """The n the quality sequence is tuned for.

    Shadow: min_labelled paired rows. Canary: the labelled rows of both sides when the
    challenger's reach min_labelled (its share of traffic is fixed by the plan, so this does not
    depend on the data).
    """
    share = float(doc.get("share") or 0.0)
    if doc["mode"] == SHADOW or not 0.0 < share < 1.0:
        return float(rule.min_labelled)
    return rule.min_labelled / share


def wilson(k: int, n: int, z: float) -> list[float] | None:
    """Wilson score interval of a proportion k/n (None without observations).

    With z = sequence_z(n, ...) it is the confidence sequence for a proportion: the set of p
    with |k/n - p| <= z sqrt(p (1 - p) / n), i.e. the Gaussian-mixture boundary with the
    Bernoulli variance at p itself rather than estimated, so it stays a real interval when
    k = 0 or k = n (an estimated variance would be 0 there).
    """
    if n == 0:
        return None
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if k == 0 else max(0.0, centre - half)  # exact at the ends, not 1e-17 off
    return [low, 1.0 if k == n else min(1.0, centre + half)]


def _keys(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index([labels.REQUEST_ID, labels.ROW])


def _agreement(answered: dict[str, pd.DataFrame], task: str) -> dict[str, Any]:
    """Share of rows both answered on which they agree (regression: within 1e-6 relative)."""
    a, b = _keys(answered["champion"]), _keys(answered["challenger"])
    both = a.join(b, how="inner", lsuffix="_a", rsuffix="_b")
    if both.empty:
        return {"rows": 0, "rate": None}
    if task == "regression":
        same = np.isclose(both[f"{VALUE}_a"], both[f"{VALUE}_b"], rtol=1e-6, atol=0)
    else:
        same = both[f"{PREDICTION}_a"] == both[f"{PREDICTION}_b"]
    return {"rows": len(both), "rate": float(np.mean(same))}


def _distance(a: pd.DataFrame, b: pd.DataFrame, task: str) -> dict[str, Any] | None:
    """Total variation between predicted class shares, or the KS statistic between values."""
    if a.empty or b.empty:
        return None
    if task == "regression":
        from scipy import stats  # noqa: PLC0415 (only the regression distance needs it)

        return {"kind": "ks", "value": float(stats.ks_2samp(a[VALUE], b[VALUE]).statistic)}
    pa_, pb = a[PREDICTION].value_counts(normalize=True), b[PREDICTION].value_counts(normalize=True)
    tv = 0.5 * float(pa_.sub(pb, fill_value=0.0).abs().sum())
    return {"kind": "total_variation", "value": tv}


def _quality(joined: pd.DataFrame, task: str) -> pd.Series:
    """Per labelled row: 1/0 correct (classification) or minus the absolute error, by key."""
    if joined.empty:
        return pd.Series(dtype=float)
    truth = joined[labels.LABEL]
    if task == "regression":
        q = -(joined[VALUE].astype(float) - pd.to_numeric(truth, errors="coerce")).abs()
    else:
        num_t = pd.to_numeric(truth, errors="coerce")
        num_p = joined[VALUE].astype(float)
        numeric = num_t.notna() & num_p.notna()
        # '1' and 1.0 are the same class; non-numeric classes compare as text
        q = np.where(numeric, num_t == num_p, joined[PREDICTION] == truth.astype(str))
        q = pd.Series(q.astype(float), index=joined.index)
    keys = pd.MultiIndex.from_frame(joined[[labels.REQUEST_ID, labels.ROW]])
    return pd.Series(q.to_numpy(), index=keys)


def _difference(
    scored: dict[str, pd.Series], paired: bool, rule: RolloutRule, planned: float
) -> dict[str, Any] | None:
    """Challenger minus champion quality with a confidence sequence (`sequence_z`).

    Shadow: paired on the same labelled rows, so the difference is the mean of n per-row
    differences d_i, one stream of n observations: sd = sd(d), interval mean +- z(n) sd /
    sqrt(n). Canary: each labelled request was answered by one side, assigned at random by the
    plan's share s; the difference of means is (asymptotically) the mean over all t = n_a + n_b
    labelled requests of the augmented inverse-probability-weighted outcome with each side's
    mean m as its regression, m_b - m_a + Z (y - m_b) / s - (1 - Z) (y - m_a) / (1 - s)
    (drconfseq's pseudo_outcome_abstract; the randomized-experiment case of the same paper; the
    plain IPW outcome Z y / s - (1 - Z) y / (1 - s) has a larger variance). Its variance per
    request sigma^2 = var_b / s + var_a / (1 - s) gives sigma^2 / t = var_a / n_a + var_b / n_b
    = se^2, so the sequence over time t is diff +- z(t) * se, tuned for `planned`
    (`_planned_pairs`).
    """
    a, b = scored["champion"], scored["challenger"]
    if paired:
        both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
        d = (both["b"] - both["a"]).to_numpy()
        if len(d) < 2:
            return None
        diff, se, n = float(d.mean()), statistics.stdev(d) / math.sqrt(len(d)), len(d)
    else:
        if len(a) < 2 or len(b) < 2:
            return None
        diff = float(b.mean() - a.mean())
        se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
        n = min(len(a), len(b))
    interval = quality_interval(diff, se, n if paired else len(a) + len(b), planned, rule)
    return {"value": diff, "interval": interval, "rows": n, "paired": paired,
            "kind": "confidence sequence", "planned_n": planned}  # fmt: skip


def quality_interval(diff, se, t, planned: float, rule: RolloutRule) -> list:
    """[diff - z se, diff + z se] with z = sequence_z(t, planned).

    The quality difference's confidence sequence after t observations (`_difference` says what
    t and se are). Works on numpy arrays too (tests/kfops/test_rollout_sequential.py).
    """
    z = sequence_z(t, planned, rule.confidence)
    return [diff - z * se, diff + z * se]


@dataclasses.dataclass(frozen=True)
class Verdict:
    """promote, wait or abort, with every reason."""

    decision: str
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"decision": self.decision, "reasons": list(self.reasons)}


def judge(comparison: dict[str, Any], rule: RolloutRule) -> Verdict:
    """Applies the rule: wait on too little traffic, abort on sure harm, promote on sure gain.

    Abort when the challenger's error-rate interval lies wholly above the champion's upper
    bound plus max_error_increase, or (canary) its p99 latency's lower bound lies above
    max_p99_ratio times the champion's upper bound, or the quality-difference interval lies
    wholly below -margin. Promote when the quality interval lies wholly above -margin, errors
    are not surely worse and (canary) the challenger's p99 upper bound is at most
    max_p99_ratio times the champion's lower bound. Anything else waits. The quality and error
    intervals are confidence sequences (`compare`), so applying the rule at every new batch of
    traffic keeps a false promote (equal models) at most (1 - confidence) / 2, however many
    looks.

    Latency puts the burden of proof on the challenger, as quality does: "not surely slower"
    would promote a canary twice as slow whenever its few hundred requests leave the p99 bounds
    wide, so promotion needs the slowdown bounded (for p99 at 95 %, 368 canary requests before
    an upper bound exists). Shadow latency is not judged: a shadow event's seconds are the
    challenger's share of a batched predict, not the time a client waited.
    """
    champ, chall = comparison["champion"], comparison["challenger"]
    if chall["requests"] < rule.min_requests:
        said = f"{chall['requests']} of {rule.min_requests} challenger requests"
        missed = champ["requests"] - chall["requests"]
        if comparison.get("mode") == SHADOW and missed > 0:
            # shed by a saturated server or a dead child (kfops_shadow_requests_total says which):
            # a shadow that never catches up waits forever, so the wait says why
            said += (
                f"; {missed} of the champion's {champ['requests']} were not shadowed "
                "(dropped or off: see kfops_shadow_requests_total)"
            )
        return Verdict(WAIT, (said,))
    ceiling = (champ["error_interval"] or [0.0, 0.0])[1] + rule.max_error_increase
    low, high = chall["error_interval"]
    if low > ceiling:
        return Verdict(ABORT, (f"challenger error rate >= {low:.4f} > {ceiling:.4f}",))
    slower, unproven = _latency(comparison, rule)
    if slower:
        return Verdict(ABORT, (slower,))
    if chall["labelled"] < rule.min_labelled:
        return Verdict(WAIT, (f"{chall['labelled']} of {rule.min_labelled} labelled rows",))
    diff = comparison["quality_difference"]
    if diff is None:
        return Verdict(WAIT, ("no labelled rows on both sides to compare",))
    lo, hi = diff["interval"]
    span = f"quality difference {diff['value']:+.4f} in [{lo:+.4f}, {hi:+.4f}]"
    if hi < -rule.margin:
        return Verdict(ABORT, (f"{span} lies below -{rule.margin}",))
    if lo <= -rule.margin:
        return Verdict(WAIT, (f"{span} includes -{rule.margin}",))
    above = f"{span} lies above -{rule.margin}"
    blocks = (
        [f"challenger error rate may reach {high:.4f} > {ceiling:.4f}"] if high > ceiling else []
    )
    blocks += [unproven] if unproven else []
    return Verdict(WAIT, (above, *blocks)) if blocks else Verdict(PROMOTE, (above,))


def _latency(comparison: dict[str, Any], rule: RolloutRule) -> tuple[str | None, str | None]:
    """(why abort, why not promote yet) on canary p99 latency; (None, None) in shadow mode."""
    if comparison.get("mode") != CANARY:
        return None, None
    champ_lo, champ_hi = comparison["champion"]["p99_interval_ms"]
    chall_lo, chall_hi = comparison["challenger"]["p99_interval_ms"]
    ratio = rule.max_p99_ratio
    if chall_lo is not None and champ_hi is not None and chall_lo > ratio * champ_hi:
        return (f"canary p99 >= {chall_lo:.2f} ms > {ratio} x the champion's p99 "
                f"<= {champ_hi:.2f} ms"), None  # fmt: skip
    if chall_hi is None or champ_lo is None:
        need = math.ceil(math.log((1 - rule.confidence) / 2) / math.log(0.99))  # 0.99^n <= a
        got = comparison["challenger"]["requests"]
        return None, f"too few requests to bound the canary's p99 latency ({got} of {need})"
    if chall_hi > ratio * champ_lo:
        return None, (f"canary p99 <= {chall_hi:.2f} ms is not yet shown within {ratio} x the "
                      f"champion's p99 >= {champ_lo:.2f} ms")  # fmt: skip
    return None, None


def z_of(confidence: float) -> float:
    """The two-sided normal quantile for a confidence level.

    It holds for one look at a fixed n; the rule's intervals use `sequence_z` (every look).
    """
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2)


def evaluate(
    store: base.Store, name: str, rule: RolloutRule, given: Any = None
) -> tuple[dict, dict, Verdict]:
    """(pointer, comparison, verdict) of the running rollout of `name`; writes nothing.

    It judges with the rule the pointer records, if any (`judged_by`: `rule` and `given`).

    Raises:
        NotFound: no rollout is running.
        ConfigError: a chosen field of `rule` differs from the recorded rule.
    """
    reg = registry.Registry(store)
    doc = running(reg, name)
    rule = judged_by(name, doc, rule, given)
    events = read_events(store, name, doc)
    task = task_of(reg, name, str(doc["challenger"]))
    comparison = compare(events, labels.read(store, name), doc, task, rule)
    return (
        doc,
        comparison,
        _unless_staged(reg, name, str(doc["challenger"]), judge(comparison, rule)),
    )


def _unless_staged(reg: registry.Registry, name: str, version: str, verdict: Verdict) -> Verdict:
    """A promote verdict on a version staged for human approval (kfops.approval) waits.

    Staging exists so that a person decides what serves: the evidence does not replace them,
    so status, decide and the rollout step say wait and name the approval command (abort stays:
    it serves nothing new). A version a person rejected waits too, saying so.
    """
    why = _unapproved_reason(reg, name, version) if verdict.decision == PROMOTE else None
    if why is None:
        return verdict
    return Verdict(WAIT, (*verdict.reasons, why))


def _unapproved_reason(reg: registry.Registry, name: str, version: str) -> str | None:
    """Why `version` may not become champion through a rollout (staged or rejected), or None."""
    why = approval.not_approved(reg, name, version)
    if why is None:
        return None
    if version in approval.pending(reg, name):
        return (f"v{version} is staged for human approval: it becomes champion through "
                f"`kfops models approve {name} {version} --by WHO --reason WHY`")  # fmt: skip
    return f"{why}: it does not become champion"


def finish(
    reg: registry.Registry, name: str, outcome: str, by: str, reason: str, evidence: dict
) -> dict[str, Any]:
    """Ends the running rollout (PROMOTED or ABORTED), recorded with who, why and the evidence.

    The pointer is ended first (compare-and-swap, so two deciders cannot both end it), then a
    promotion moves the champion pointer. Returns the history entry.

    Raises:
        ConfigError: `by` or `reason` is empty, or a promotion of a version staged for human
            approval (`kfops models approve` makes it champion, with who and why) or rejected.
        NotFound: no rollout is running.
    """
    if not (by or "").strip() or not (reason or "").strip():
        raise errors.ConfigError("ending a rollout needs who (--by) and why (--reason)")
    if outcome == PROMOTED:
        challenger = str(running(reg, name)["challenger"])
        why = _unapproved_reason(reg, name, challenger)
        if why is not None:
            raise errors.ConfigError(why)
    entry: dict[str, Any] = {}

    def change(current: dict | None) -> dict:
        if running_plan(current) is None:
            raise errors.NotFound(f"no rollout of {name!r} is running")
        history = [h for h in current.get("history", [])]
        started = {k: current[k] for k in ("challenger", "champion", "mode", "share", "started_at",
                                           "started_by", RULE_KEY) if k in current}  # fmt: skip
        entry.clear()
        entry.update({**started, "outcome": outcome, "ended_at": _now(), "ended_by": by,
                      "reason": reason, "evidence": evidence})  # fmt: skip
        return {**current, "state": outcome, "history": [*history, dict(entry)]}

    doc = reg.swap_document(name, registry.ROLLOUT_FILE, change)
    if outcome == PROMOTED:
        reg.promote(name, str(doc["challenger"]))
    return entry


def decide(
    store: base.Store, name: str, rule: RolloutRule, by: str, reason: str = "", given: Any = None
) -> tuple[dict, dict, Verdict, dict | None]:
    """Judges the running rollout and acts on it: promote, abort, or leave it running.

    The first decide of a rollout records `rule` in its pointer; every later one judges with the
    recorded rule and refuses a chosen field that differs, before writing anything (`judged_by`;
    the history entry of the ended rollout keeps it).

    Returns:
        (pointer, comparison, verdict, history entry or None when it keeps running).

    Raises:
        NotFound: no rollout is running.
        ConfigError: a chosen field of `rule` differs from the recorded rule.
    """
    reg = registry.Registry(store)
    doc = running(reg, name)
    rule = judged_by(name, doc, rule, given)
    if doc.get(RULE_KEY) is None:
        _record_rule(reg, name, doc, rule)
    doc, comparison, verdict = evaluate(store, name, rule)
    outcome = {PROMOTE: PROMOTED, ABORT: ABORTED}.get(verdict.decision)
    if outcome is None:
        return doc, comparison, verdict, None
    evidence = {"comparison": comparison, **verdict.to_dict()}
    entry = finish(reg, name, outcome, by, reason or "; ".join(verdict.reasons), evidence)
    return doc, comparison, verdict, entry


def scheduled_decision(
    store: base.Store, name: str, rule: RolloutRule, by: str, run_id: str
) -> dict[str, Any]:
    """One tick of the scheduled rollout step: `decide`, or idle when no rollout runs.

    Returns what the step records: comparison (None when idle), decision, reasons, and the
    history entry when the rollout ended (ended by `by` and the pipeline run).
    """
    idle = idle_reason(registry.Registry(store), name)
    if idle is not None:
        print(idle)
        return {"comparison": None, **Verdict(IDLE, (idle,)).to_dict(), "ended": None}
    who = f"{by} (pipeline run {run_id})" if by else f"pipeline run {run_id}"
    _, comparison, verdict, entry = decide(store, name, rule, who)
    return {"comparison": comparison, **verdict.to_dict(), "ended": entry}


def idle_reason(reg: registry.Registry, name: str) -> str | None:
    """Why there is nothing to decide (no rollout of `name` running), or None when one runs.

    For the scheduled rollout step: between rollouts each tick of a recurring run succeeds and
    says so, rather than failing every 15 minutes until someone disables the schedule. A model
    the registry does not have is still an error (a misspelt name in the schedule).

    Raises:
        NotFound: the registry has no version of `name`.
    """
    if not reg.versions(name):
        raise errors.NotFound(f"model {name!r} has no version in the registry")
    doc = pointer(reg, name)
    if running_plan(doc) is not None:
        return None
    if not doc or not doc.get("history"):
        return f"no rollout of {name!r} has started; nothing to decide"
    last = doc["history"][-1]
    return (
        f"no rollout of {name!r} is running (the last, of version {last.get('challenger')}, "
        f"was {last.get('outcome')} at {last.get('ended_at')}); nothing to decide"
    )
