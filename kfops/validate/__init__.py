"""Validate: infer a schema from a first batch, then check any batch against a schema.

`infer_schema` writes the data contract (types, nullability, ranges, domains, label classes,
roles). `validate` checks a frame against a schema and returns every anomaly, each with a column,
a rule, a severity, a detail and example offending values; `raise_for_blocking` turns the
blocking ones into one `ValidationFailed` that lists them all. `ValidateConfig` decides which
rules block.

Rules (column `*` means the whole table):
    no_rows, missing_column, label_missing, extra_column, duplicate_rows, type_mismatch,
    all_null, null_fraction, unexpected_nulls, inf_values, mixed_types, out_of_range,
    near_range, unseen_category, constant, label_nulls, label_single_class, label_constant,
    label_unseen_class, leakage, conflicting_labels, null_concentration, group_class_balance.

Modules: `core` (the stage, `validate`), `infer` (schema inference), `checks` (table and column
checks), `target` (label checks and leakage), `quality` (checks across rows: conflicting labels,
concentrated nulls, class balance per group), `results` (config, anomalies, report), `stats`
(vectorised helpers), `contract` (which schema a model's batch is held to; accepted changes).
"""

from kfops.validate.core import validate
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
