"""Validation's configuration and results: what counts as blocking, and what was found."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from kfops import errors, parameters

SEVERITIES = ("error", "warning")
TABLE = "*"  # the `column` of anomalies about the whole table (no rows, duplicate rows)
RULES = (
    "no_rows", "missing_column", "label_missing", "extra_column", "duplicate_rows",
    "type_mismatch", "all_null", "null_fraction", "unexpected_nulls", "inf_values",
    "mixed_types", "out_of_range", "near_range", "unseen_category", "constant", "label_nulls",
    "label_single_class", "label_constant", "label_unseen_class", "leakage",
    "conflicting_labels", "null_concentration", "group_class_balance",
)  # fmt: skip


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
        range_margin: values beyond the schema's [min, max] widened by this share of its width
            on each side are `out_of_range` (range_severity); values outside [min, max] but
            within the margin are `near_range` warnings.
        max_unseen_fraction: unseen categories in more than this share of a column's non-null
            values are `unseen_category` errors; fewer are warnings (strict_categories: any).
        rule_severities: rule -> severity, overriding any rule's default (e.g.
            {"out_of_range": "warning"} to let a batch through while looking into it).
        range_severity: severity of values beyond the range and its margin.
        extra_column_severity: severity of columns the schema does not list (the columns
            changed, so by default it blocks).
        constant_severity: severity of a feature with a single value.
        leakage_severity: severity of suspected leakage.
        mixed_types_severity: severity of mixed types in one column.
        max_examples: offending values quoted per anomaly.
        seed: seeds the leakage sample.
    """

    strict_categories: bool = parameters.field(
        False, "unseen categories and label classes are errors, not warnings"
    )
    schema_uri: str = parameters.field(
        "", "check against this schema; '' = the champion's (or the accepted one), else inferred"
    )
    range_margin: float = parameters.field(
        0.2, "share of the trained range a value may go beyond it before it blocks"
    )
    max_unseen_fraction: float = parameters.field(
        0.01, "share of a column's values that may be unseen categories before it blocks"
    )
    rule_severities: Mapping[str, str] = parameters.field(
        {}, "rule -> 'error' or 'warning', overriding the rule's default severity"
    )
    max_duplicate_fraction: float = 0.05
    leakage_threshold: float | None = 0.99
    leakage_sample_rows: int = 20_000
    leakage_min_rows: int = 50
    null_tolerance: float = 0.0
    mixed_numeric_fraction: float = 0.5
    range_severity: str = "error"
    extra_column_severity: str = "error"
    constant_severity: str = "error"
    leakage_severity: str = "error"
    mixed_types_severity: str = "error"
    max_examples: int = 5
    seed: int = 0

    def __post_init__(self):
        names = ("max_duplicate_fraction", "null_tolerance", "mixed_numeric_fraction")
        for name in (*names, "max_unseen_fraction"):
            _check_fraction(name, getattr(self, name))
        if self.leakage_threshold is not None:
            _check_fraction("leakage_threshold", self.leakage_threshold)
        for name in ("leakage_sample_rows", "leakage_min_rows", "max_examples"):
            if int(getattr(self, name)) < 1:
                raise errors.ConfigError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        margin = self.range_margin
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not margin >= 0:
            raise errors.ConfigError(f"range_margin must be a number >= 0, got {margin!r}")
        for f in dataclasses.fields(self):
            if f.name.endswith("_severity"):
                errors.check_choice(f.name, getattr(self, f.name), SEVERITIES)
        if not isinstance(self.rule_severities, Mapping):
            raise errors.ConfigError(
                f"rule_severities must map rule -> severity, got {self.rule_severities!r}"
            )
        for rule, severity in self.rule_severities.items():
            errors.check_choice("rule_severities: rule", rule, RULES)
            errors.check_choice(f"rule_severities[{rule!r}]", severity, SEVERITIES)

    def categories_severity(self, unseen_fraction: float = 1.0) -> str:
        """Severity of unseen categories (and label classes): an error above the tolerance."""
        if self.strict_categories or unseen_fraction > self.max_unseen_fraction:
            return "error"
        return "warning"

    def severity_of(self, anomaly: Anomaly) -> Anomaly:
        """The anomaly with its severity as `rule_severities` says (unchanged when unlisted)."""
        severity = self.rule_severities.get(anomaly.rule)
        if severity is None or severity == anomaly.severity:
            return anomaly
        return dataclasses.replace(anomaly, severity=severity)


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
    quality: Mapping[str, Any] = dataclasses.field(default_factory=dict)

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
            "quality": dict(self.quality),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        """Rebuilds a report from `to_dict` output."""
        anomalies = tuple(
            Anomaly(**{**a, "examples": tuple(a.get("examples", ()))}) for a in data["anomalies"]
        )
        return cls(
            anomalies,
            data["n_rows"],
            data["n_columns"],
            data.get("label"),
            data.get("task"),
            data.get("quality", {}),
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
