"""Resolve the current champion and evaluate it on the candidate's test data.

KFP has no baseline resolver, so this small step reads the registry. Comparing on the *same* test
rows is what makes the gate's "not worse than the champion" rule fair. A model's first run has no
champion: then the step reads no rows and imports no scikit-learn (kfops.evaluate loads it), which
is most of its start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from kfops import errors
from kfops import registry as registry_mod

if TYPE_CHECKING:
    import pandas as pd

    from kfops import schema


def resolve(
    registry: registry_mod.Registry,
    name: str,
    read_test: Callable[[], pd.DataFrame],
    data_schema: schema.Schema,
    *,
    slice_columns: Sequence[str] = (),
    sensitive_column: str = "",
) -> dict[str, Any]:
    """The champion's evaluation on the test rows, or a record saying why there is none.

    Args:
        registry: where the champion is registered.
        name: the model name.
        read_test: reads the candidate's test split; called only when a champion exists.
        data_schema: the candidate's data schema (label and task of the evaluation).
        slice_columns: evaluated per slice, as the candidate is.
        sensitive_column: the fairness column, as for the candidate.

    Returns:
        `{"exists": False}` when no champion is registered; `{"exists": True, "version": v,
        "comparable": False, "reason": ...}` when the champion cannot score these rows (e.g. the
        schema changed); otherwise `{"exists": True, "version": v, "comparable": True,
        "evaluation": Evaluation.to_dict()}`.

    Raises:
        IntegrityError: the champion's files fail their sha256 check (never silently skipped).
        StorageError: the store cannot be read.
    """
    version = registry.champion(name)
    if version is None:
        return {"exists": False}
    from kfops import evaluate as evaluate_mod  # noqa: PLC0415 (scikit-learn: only with a champion)

    config = evaluate_mod.config_for(
        data_schema, slice_columns=list(slice_columns), sensitive_column=sensitive_column
    )
    loaded = registry.load(name, version)
    test = read_test()
    missing = sorted(set(loaded.schema.feature_names) - set(test.columns))
    if missing:
        return _not_comparable(version, f"test data lacks the champion's features {missing}")
    try:
        evaluation = evaluate_mod.evaluate(loaded.pipeline, test, config)
    except (errors.ModelError, errors.DataError, ValueError) as e:
        return _not_comparable(version, f"champion cannot score the test data: {e}")
    return {
        "exists": True,
        "version": version,
        "comparable": True,
        "model_sha256": loaded.manifest["files"][registry_mod.MODEL_FILE]["sha256"],
        "evaluation": evaluation.to_dict(),
    }


def _not_comparable(version: str, reason: str) -> dict[str, Any]:
    return {"exists": True, "version": version, "comparable": False, "reason": reason}
