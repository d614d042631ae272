"""Monitor component: drift and quality of a model's logged traffic, and the retrain decision."""

from typing import List

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def monitor(
    store_uri: str,
    model_name: str,
    report: dsl.Output[dsl.HTML],
    metrics: dsl.Output[dsl.Metrics],
    decision: dsl.Output[dsl.Artifact],
    window: str = "all",
    drift_share_threshold: float = 0.15,
    key_columns: List[str] = [],  # noqa: B006 (KFP reads the default; never mutated)
    quality_metric: str = "",
    quality_floor: float = -1.0,  # kfops.parameters.RULE_OFF: no floor
    labels_key: str = "",
    min_rows: int = 500,
    sample_size: int = 20000,
    reference_rows: int = 10000,
    seed: int = 0,
) -> bool:
    """Returns whether to retrain; the decision artifact says why. Rules: kfops.monitor."""
    from kfops import config, dataio, parameters, store
    from kfops.monitor import params, service
    from kfops.monitor import rules as core
    from kfops.runs import monitoring as runs_monitoring

    cfg = parameters.build(
        core.MonitorConfig,
        window=window,
        drift_share_threshold=drift_share_threshold,
        key_columns=key_columns,
        quality_metric=quality_metric,
        quality_floor=quality_floor,
        min_rows=min_rows,
        sample_size=sample_size,
        reference_rows=reference_rows,
        seed=seed,
    )
    st = store.open_store(store_uri, config.StoreSettings.from_env())
    result = service.monitor_model(st, model_name, cfg, params.read_labels(st, labels_key))
    dataio.write_text(report.path, result.html)
    for name, value in params.metric_values(result).items():
        metrics.log_metric(name, value)
    summary = result.to_dict()
    # A `kfops-monitoring` run record, as `kfops monitor` writes it; the decision names it.
    summary["run_id"] = runs_monitoring.record(st, summary, result.html)
    dataio.write_json(summary, decision.path)
    decision.metadata.update(params.decision_metadata(result))
    return result.retrain
