"""Train: one sklearn Pipeline (preprocessing + estimator, seeded search) and a Dummy baseline.

The stage is `core` (config, result, `train`); `setup` builds the estimator families and their
preprocessing. Re-exported here: `from kfops import train; train.train(...)`.
"""

from kfops.train.core import ESTIMATORS, TASKS, TrainConfig, TrainResult, search_folds, train

__all__ = ["ESTIMATORS", "TASKS", "TrainConfig", "TrainResult", "search_folds", "train"]
