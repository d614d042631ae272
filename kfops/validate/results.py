"""Validation's configuration and results: what counts as blocking, and what was found."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from kfops import errors, parameters

SEVERITIES = ("error", "warning")
TABLE = "*"  # the `column` of anomalies about the whole table (no rows, duplicate rows)


@dataclasses.dataclass(frozen=True)
class ValidateConfig:
    """Which checks block (severity "error") and their limits.

    Attributes:
        strict_categories: unseen categories (and unseen label classes) are errors, not warnings.
        max_duplicate_fraction: more exact duplicate rows than this fraction is a warning.
        leakage_threshold: a feature that alone reaches this score (ROC AUC for a binary label,
            purity for categories, |Spearman| or eta for regression) is suspected leakage.
            None turns the leakage check off.
        leakage_sample_rows: rows sampled (seeded) for the leakage check, which ranks data.
        leakage_min_rows: below this many labelled rows, perfect separation is likely chance,
            so leakage is not checked.
        null_tolerance: added to every column's `max_null_fraction` from the schema.
        mixed_numeric_fraction: a text column where at least this share of values parse as
            numbers, but not all, has mixed types (dirty numbers such as "n/a" or "12,5").
        range_severity: severity of values outside the schema's [min, max].
        extra_column_severity: severity of columns the schema does not list.
        constant_severity: severity of a feature with a single value.
        leakage_severity: severity of suspected leakage.
        mixed_types_severity: severity of mixed types in one column.
        max_examples: offending values quoted per anomaly.
        seed: seeds the leakage sample.
    """

    strict_categories: bool = parameters.field(
        False, "unseen categories and label classes are errors, not warnings"
    )
    schema_uri: str = parameters.field("", "check against this schema instead of inferring one")
    max_duplicate_fraction: float = 0.05
    leakage_threshold: float | None = 0.99
    leakage_sample_rows: int = 20_000
    leakage_min_rows: int = 50
    null_tolerance: float = 0.0
    mixed_numeric_fraction: float = 0.5
    range_severity: str = "warning"
    extra_column_severity: str = "warning"
    constant_severity: str = "error"
    leakage_severity: str = "error"
    mixed_types_severity: str = "error"
    max_examples: int = 5
    seed: int = 0

    def __post_init__(self):
        for name in ("max_duplicate_fraction", "null_tolerance", "mixed_numeric_fraction"):
            _check_fraction(name, getattr(self, name))
        if self.leakage_threshold is not None:
            _check_fraction("leakage_threshold", self.leakage_threshold)
        for name in ("leakage_sample_rows", "leakage_min_rows", "max_examples"):
            if int(getattr(self, name)) < 1:
                raise errors.ConfigError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for f in dataclasses.fields(self):
            if f.name.endswith("_severity"):
                errors.check_choice(f.name, getattr(self, f.name), SEVERITIES)

    def categories_severity(self) -> str:
        """Severity of unseen categories and label classes."""
        return "error" if self.strict_categories else "warning"


def _check_fraction(name: str, value: Any) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value) or not 0 <= value <= 1:
        raise errors.ConfigError(f"{name} must be a number in [0, 1], got {value!r}")


@dataclasses.dataclass(frozen=True)
class Anomaly:
    """One finding: which column breaks which rule, how badly, and example offending values."""

    column: str
    rule: str
    severity: str
    detail: str
    examples: tuple[Any, ...] = ()

    def message(self) -> str:
        """The detail plus the examples, as shown in errors and reports."""
        if not self.examples:
            return self.detail
        return f"{self.detail}; e.g. {list(self.examples)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {**dataclasses.asdict(self), "examples": list(self.examples)}


@dataclasses.dataclass(frozen=True)
class ValidationReport:
    """Every anomaly found in one batch, errors first."""

    anomalies: tuple[Anomaly, ...]
    n_rows: int
    n_columns: int
    label: str | None = None
    task: str | None = None

    @property
    def blocking(self) -> tuple[Anomaly, ...]:
        """Anomalies that fail the step."""
        return tuple(a for a in self.anomalies if a.severity == "error")

    @property
    def warnings(self) -> tuple[Anomaly, ...]:
        """Anomalies that are reported but not fatal."""
        return tuple(a for a in self.anomalies if a.severity == "warning")

    @property
    def ok(self) -> bool:
        """True when nothing blocks."""
        return not self.blocking

    def rules(self) -> set[tuple[str, str]]:
        """(column, rule) pairs found; handy in tests and gates."""
        return {(a.column, a.rule) for a in self.anomalies}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the anomalies artifact)."""
        return {
            "ok": self.ok,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "label": self.label,
            "task": self.task,
            "blocking": len(self.blocking),
            "warnings": len(self.warnings),
            "anomalies": [a.to_dict() for a in self.anomalies],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        """Rebuilds a report from `to_dict` output."""
        anomalies = tuple(
            Anomaly(**{**a, "examples": tuple(a.get("examples", ()))}) for a in data["anomalies"]
        )
        return cls(
            anomalies, data["n_rows"], data["n_columns"], data.get("label"), data.get("task")
        )


def raise_for_blocking(report: ValidationReport) -> None:
    """Raises ValidationFailed listing every blocking anomaly (column, rule, offending values).

    Raises:
        ValidationFailed: the report has at least one error-severity anomaly.
    """
    if report.blocking:
        raise errors.ValidationFailed(
            [errors.SchemaViolation(a.column, a.rule, a.message()) for a in report.blocking]
        )
