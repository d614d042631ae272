"""Resolve the current champion and evaluate it on the candidate's test data.

KFP has no baseline resolver, so this small step reads the registry. Comparing on the *same* test
rows is what makes the gate's "not worse than the champion" rule fair.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from kfops import errors
from kfops import evaluate as evaluate_mod
from kfops import registry as registry_mod


def resolve(
    registry: registry_mod.Registry,
    name: str,
    test: pd.DataFrame,
    config: evaluate_mod.EvalConfig,
) -> dict[str, Any]:
    """The champion's evaluation on `test`, or a record saying why there is none.

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
    loaded = registry.load(name, version)
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
