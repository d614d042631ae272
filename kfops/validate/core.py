"""The validate stage: every check on a frame against its schema, errors first."""

from __future__ import annotations

import pandas as pd

from kfops import schema
from kfops.validate import checks, quality, target
from kfops.validate.results import ValidateConfig, ValidationReport


def validate(
    df: pd.DataFrame,
    data_schema: schema.Schema,
    config: ValidateConfig | None = None,
    *,
    sensitive_column: str | None = None,
) -> ValidationReport:
    """Checks a frame against a schema and reports every anomaly, errors first.

    Args:
        df: the data.
        data_schema: the contract (from `infer_schema` or a saved schema.json).
        config: which rules block and their limits; None uses the defaults.
        sensitive_column: the column whose groups fairness is judged on; the report gives the
            class balance of each of its groups.

    Returns:
        The report; `report.blocking` holds what must fail the step.

    Example:
        >>> sch = infer_schema(train_df, "churned")
        >>> report = validate(new_df, sch, ValidateConfig(strict_categories=True))
        >>> raise_for_blocking(report)  # ValidationFailed naming column, rule and values
    """
    cfg = config or ValidateConfig()
    found = checks.table_checks(df, data_schema, cfg)
    masks = {}  # each column's null mask, taken once for the column checks and quality checks
    for spec in data_schema.columns:
        if spec.name in df.columns:
            series = df[spec.name]
            masks[spec.name] = series.isna().to_numpy()
            found += checks.column_checks(series, spec, cfg, masks[spec.name])
    found += target.label_checks(df, data_schema, cfg)
    found += target.leakage_checks(df, data_schema, cfg)
    extra, tables = quality.quality_checks(df, data_schema, cfg, sensitive_column, masks)
    found = [cfg.severity_of(a) for a in found + extra]
    ordered = sorted(found, key=lambda a: a.severity != "error")
    return ValidationReport(
        anomalies=tuple(ordered),
        n_rows=int(len(df)),
        n_columns=int(df.shape[1]),
        label=data_schema.label,
        task=data_schema.task,
        quality=tables,
    )
