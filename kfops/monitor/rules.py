"""What the monitor looks at (the window) and how it decides (thresholds, key columns, floors).

Every knob lives in a frozen, validated dataclass so a bad value fails when the config is built,
not halfway through a monitoring run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from typing import Any

from kfops import errors, metric_catalog, parameters

# Distance-like statistics flag drift when the score is at or above the threshold; p-value tests
# flag it when the p-value is below. Evidently does not expose the direction, so it is listed here.
DISTANCE_METHODS = frozenset({"wasserstein", "jensenshannon", "psi", "kl_div", "hellinger"})
NUMERIC_METHODS = DISTANCE_METHODS | {"ks", "anderson", "cramer_von_mises", "mannw", "t_test"}
CATEGORICAL_METHODS = frozenset({"jensenshannon", "psi", "kl_div", "hellinger", "chisquare", "z"})

# Retrain when at least this share of features drifted. 0.15 is two features of ten: on
# builtin:churn the stated drift moves three, so losing one at the column threshold does not flip
# the decision, and a single column drifting alone does not retrain (bench/RESULTS.md).
DEFAULT_DRIFT_SHARE = 0.15

_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclasses.dataclass(frozen=True)
class Window:
    """Which logged rows to judge: a UTC time range, the last N rows, or everything.

    Attributes:
        start: inclusive lower bound of `kfops_timestamp` (UTC), or None for unbounded.
        end: exclusive upper bound (UTC), or None for unbounded.
        last_rows: judge only the newest N rows (within the time range, if one is given).
    """

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    last_rows: int | None = None

    def __post_init__(self):
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                object.__setattr__(self, name, value.replace(tzinfo=dt.UTC))
        if self.last_rows is not None and self.last_rows < 1:
            raise errors.ConfigError(f"window last_rows must be >= 1, got {self.last_rows}")
        if self.start and self.end and self.start >= self.end:
            raise errors.ConfigError(f"window start {self.start} is not before end {self.end}")

    @classmethod
    def parse(cls, text: str, now: dt.datetime | None = None) -> Window:
        """Parses the CLI form of a window.

        Forms: `all`; `last:N` (newest N rows); a duration back from now, `30m`, `24h`, `7d`,
        `2w`; an ISO range `START..END` where either side may be empty (naive times are UTC).

        Raises:
            ConfigError: the text is none of these forms.

        Example:
            >>> Window.parse("last:5000").last_rows
            5000
        """
        text = text.strip()
        if text in ("", "all"):
            return cls()
        if text.startswith("last:"):
            return cls(last_rows=_positive_int(text[len("last:") :], text))
        match = _DURATION.match(text)
        if match:
            now = now or dt.datetime.now(dt.UTC)
            delta = dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
            return cls(start=now - delta)
        if ".." in text:
            left, _, right = text.partition("..")
            return cls(start=_iso(left, text), end=_iso(right, text))
        raise errors.ConfigError(
            f"cannot parse window {text!r}: use 'all', 'last:N', a duration like '24h' or '7d', "
            "or an ISO range 'START..END'"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "last_rows": self.last_rows,
        }


@dataclasses.dataclass(frozen=True)
class QualityFloor:
    """The worst acceptable value of one quality metric on labelled traffic.

    For error metrics (`mae`, `rmse`) the value is a ceiling: retrain when the error exceeds it.
    """

    metric: str
    value: float

    def __post_init__(self):
        errors.check_choice("quality metric", self.metric, metric_catalog.MONITORED)
        if not math.isfinite(self.value):
            raise errors.ConfigError(f"quality floor for {self.metric} must be finite")

    def breached(self, observed: float) -> bool:
        """Whether an observed value is worse than the floor (or ceiling)."""
        if metric_catalog.higher_is_better(self.metric):
            return observed < self.value
        return observed > self.value

    def word(self) -> str:
        """The reasons' wording: below floor, or above ceiling for error metrics."""
        return "below floor" if metric_catalog.higher_is_better(self.metric) else "above ceiling"


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
    """How to judge a window of inference logs against the model's reference sample.

    Attributes:
        window: which logged rows to judge, as Window.parse reads it (`span` is the parsed form).
        drift_share_threshold: retrain when at least this share of features drifted.
        key_columns: features (or `kfops_prediction`/`kfops_proba`) whose drift alone triggers
            a retrain.
        num_method, cat_method: Evidently drift methods for numeric and categorical columns. The
            defaults are what Evidently picks itself for samples above 1000 rows; they measure the
            size of a shift rather than its significance, so big windows do not flag tiny shifts.
        num_threshold, cat_threshold: per-column drift thresholds (None: the method's default).
        quality_metric: labelled quality metric held to `quality_floor` ("": not checked).
        quality_floor: retrain when `quality_metric` is worse than this (a ceiling for error
            metrics); required with quality_metric. `floor` is the pair.
        min_rows: windows (and labelled subsets) smaller than this are not judged.
        sample_size: judge at most this many rows of the window, drawn uniformly at random.
        reference_rows: size of the reference summary (per-column quantile sketch).
        error_alpha: confidence level 1 - alpha of the stated sampling error bound.
        seed: seed of the window sample, so the same window gives the same verdict.
    """

    window: str = parameters.field("all", "all | last:N | 24h | 7d | START..END (UTC)")
    drift_share_threshold: float = parameters.field(
        DEFAULT_DRIFT_SHARE, "retrain at this share of drifted features"
    )
    key_columns: tuple[str, ...] = parameters.field((), "columns whose drift alone retrains")
    num_method: str = "wasserstein"
    cat_method: str = "jensenshannon"
    num_threshold: float | None = None
    cat_threshold: float | None = None
    quality_metric: str = parameters.field(
        "", "labelled quality metric held to quality_floor ('' = none)",
        choices=("", *metric_catalog.MONITORED),
    )  # fmt: skip
    quality_floor: float | None = parameters.field(
        None, "floor (ceiling for mae/rmse) of quality_metric", none_as=parameters.RULE_OFF
    )
    min_rows: int = parameters.field(500, "smaller windows (and labelled subsets) are not judged")
    sample_size: int = parameters.field(20_000, "judge at most this many rows of the window")
    reference_rows: int = parameters.field(10_000, "size of the reference summary")
    error_alpha: float = 0.01
    seed: int = parameters.field(0, "seeds the window sample")
    span: Window = dataclasses.field(init=False, repr=False, compare=False)
    floor: QualityFloor | None = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "key_columns", tuple(self.key_columns))
        object.__setattr__(self, "span", Window.parse(self.window))
        floor = None
        if self.quality_metric:
            if self.quality_floor is None:
                raise errors.ConfigError(
                    f"quality_metric {self.quality_metric!r} needs a quality_floor"
                )
            floor = QualityFloor(self.quality_metric, float(self.quality_floor))
        object.__setattr__(self, "floor", floor)
        if not 0.0 < self.drift_share_threshold <= 1.0:
            raise errors.ConfigError(
                f"drift_share_threshold must be in (0, 1], got {self.drift_share_threshold}"
            )
        errors.check_choice("num_method", self.num_method, NUMERIC_METHODS)
        errors.check_choice("cat_method", self.cat_method, CATEGORICAL_METHODS)
        for name in ("num_threshold", "cat_threshold"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise errors.ConfigError(f"{name} must be > 0, got {value}")
        if self.min_rows < 2:
            raise errors.ConfigError(f"min_rows must be >= 2, got {self.min_rows}")
        errors.check_seed("seed", self.seed)
        if self.sample_size < self.min_rows:
            raise errors.ConfigError(
                f"sample_size {self.sample_size} must be >= min_rows {self.min_rows}"
            )
        if self.reference_rows < 100:
            raise errors.ConfigError(f"reference_rows must be >= 100, got {self.reference_rows}")
        if not 0.0 < self.error_alpha < 1.0:
            raise errors.ConfigError(f"error_alpha must be in (0, 1), got {self.error_alpha}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (recorded in every result, so a verdict says how it was reached)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        out["span"] = self.span.to_dict()
        out["key_columns"] = list(self.key_columns)
        return out


def sample_error_bound(n: int, alpha: float) -> float:
    """DKW bound on how far a uniform sample's distribution can sit from the full window's.

    With probability at least 1 - alpha, every value of the sample's empirical CDF (numeric
    columns) and every category share (categorical columns) is within this distance of the full
    window's (Dvoretzky-Kiefer-Wolfowitz; sampling without replacement is only tighter).

    Example:
        >>> round(sample_error_bound(20_000, 0.01), 4)
        0.0115
    """
    return math.sqrt(math.log(2.0 / alpha) / (2.0 * n))


def _positive_int(raw: str, text: str) -> int:
    try:
        value = int(raw)
    except ValueError as e:
        raise errors.ConfigError(f"window {text!r}: {raw!r} is not a row count") from e
    if value < 1:
        raise errors.ConfigError(f"window {text!r}: row count must be >= 1")
    return value


def _iso(raw: str, text: str) -> dt.datetime | None:
    if not raw.strip():
        return None
    try:
        return dt.datetime.fromisoformat(raw.strip())
    except ValueError as e:
        raise errors.ConfigError(f"window {text!r}: {raw!r} is not an ISO date or time") from e
