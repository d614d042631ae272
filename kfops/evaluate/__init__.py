"""Evaluate: metrics overall, per slice, across a sensitive column, and against the baseline.

The stage is `core` (config, result, `evaluate`); `measures` computes metric values, `groups`
slices and fairness, `curves` the KFP UI curves. Re-exported here.
"""

from kfops.evaluate.core import (
    EvalConfig,
    Evaluation,
    config_for,
    evaluate,
    flat_metrics,
    kfp_curves,
)

__all__ = ["EvalConfig", "Evaluation", "config_for", "evaluate", "flat_metrics", "kfp_curves"]
