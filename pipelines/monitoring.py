"""The monitoring pipeline: monitor -> (if retrain) the training pipeline, nested. Composition only.

One compiled YAML runs the whole continuous-training loop; schedule it as a KFP recurring run
(`kfops submit --schedule`) or from a CronJob. Retraining goes through the full training pipeline,
gate included, so a retrained model that is not better than the champion is a reasoned rejection,
not a silent swap.
"""

from typing import Dict, List

from kfops.components.monitor import monitor
from kfops.pipelines.training import configure, training
from kfp import dsl


@dsl.pipeline(
    name="kfops-monitoring",
    description="Judge the served model's logged traffic for drift and quality; retrain if needed.",
)
def monitoring(
    store_uri: str = ".kfops/store",
    model_name: str = "churn",
    window: str = "24h",
    drift_share_threshold: float = 0.3,
    key_columns: List[str] = [],  # noqa: B006 (KFP reads the default; never mutated)
    quality_metric: str = "",
    quality_floor: float = 0.0,
    labels_key: str = "",
    min_rows: int = 500,
    sample_size: int = 20000,
    source: str = "builtin:churn",
    label: str = "churned",
    task: str = "",
    seed: int = 0,
    estimator: str = "hist_gradient_boosting",
    search_iterations: int = 8,
    cv_folds: int = 3,
    slice_columns: List[str] = [],  # noqa: B006
    sensitive_column: str = "",
    gate_thresholds: Dict[str, float] = {},  # noqa: B006 ({} = the task's default thresholds)
    champion_tolerance: float = 0.01,
    code_version: str = "",
    run_id: str = "",
):
    """Monitors `model_name`; when the decision says retrain, trains on `source` and gates it."""
    monitor_task = monitor(
        store_uri=store_uri,
        model_name=model_name,
        window=window,
        drift_share_threshold=drift_share_threshold,
        key_columns=key_columns,
        quality_metric=quality_metric,
        quality_floor=quality_floor,
        labels_key=labels_key,
        min_rows=min_rows,
        sample_size=sample_size,
        seed=seed,
    )
    configure(monitor_task, "monitor", "1", "4Gi", cache=False)
    with dsl.If(monitor_task.outputs["Output"] == True, name="retrain"):  # noqa: E712 (KFP channel)
        training(
            source=source,
            label=label,
            task=task,
            model_name=model_name,
            store_uri=store_uri,
            seed=seed,
            estimator=estimator,
            search_iterations=search_iterations,
            cv_folds=cv_folds,
            slice_columns=slice_columns,
            sensitive_column=sensitive_column,
            gate_thresholds=gate_thresholds,
            champion_tolerance=champion_tolerance,
            code_version=code_version,
            run_id=run_id,
        ).set_display_name("training")
