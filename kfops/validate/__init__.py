"""Validate: infer a schema from a first batch, then check any batch against a schema.

`infer_schema` writes the data contract (types, nullability, ranges, domains, label classes,
roles). `validate` checks a frame against a schema and returns every anomaly, each with a column,
a rule, a severity, a detail and example offending values; `raise_for_blocking` turns the
blocking ones into one `ValidationFailed` that lists them all. `ValidateConfig` decides which
rules block.

Rules (column `*` means the whole table):
    no_rows, missing_column, label_missing, extra_column, duplicate_rows, type_mismatch,
    all_null, null_fraction, unexpected_nulls, inf_values, mixed_types, out_of_range,
    unseen_category, constant, label_nulls, label_single_class, label_constant,
    label_unseen_class, leakage.

Modules: `infer` (schema inference), `checks` (table and column checks), `target` (label checks
and leakage), `results` (config, anomalies, report), `stats` (vectorised helpers).
"""

from __future__ import annotations

import pandas as pd

from kfops import schema
from kfops.validate import checks, target
from kfops.validate.infer import infer_schema, infer_task
from kfops.validate.results import (
    SEVERITIES,
    TABLE,
    Anomaly,
    ValidateConfig,
    ValidationReport,
    raise_for_blocking,
)

__all__ = [
    "SEVERITIES",
    "TABLE",
    "Anomaly",
    "ValidateConfig",
    "ValidationReport",
    "infer_schema",
    "infer_task",
    "raise_for_blocking",
    "validate",
]


def validate(
    df: pd.DataFrame, data_schema: schema.Schema, config: ValidateConfig | None = None
) -> ValidationReport:
    """Checks a frame against a schema and reports every anomaly, errors first.

    Args:
        df: the data.
        data_schema: the contract (from `infer_schema` or a saved schema.json).
        config: which rules block and their limits; None uses the defaults.

    Returns:
        The report; `report.blocking` holds what must fail the step.

    Example:
        >>> sch = infer_schema(train_df, "churned")
        >>> report = validate(new_df, sch, ValidateConfig(strict_categories=True))
        >>> raise_for_blocking(report)  # ValidationFailed naming column, rule and values
    """
    cfg = config or ValidateConfig()
    found = checks.table_checks(df, data_schema, cfg)
    for spec in data_schema.columns:
        if spec.name in df.columns:
            found += checks.column_checks(df[spec.name], spec, cfg)
    found += target.label_checks(df, data_schema, cfg)
    found += target.leakage_checks(df, data_schema, cfg)
    ordered = sorted(found, key=lambda a: a.severity != "error")
    return ValidationReport(
        anomalies=tuple(ordered),
        n_rows=int(len(df)),
        n_columns=int(df.shape[1]),
        label=data_schema.label,
        task=data_schema.task,
    )
