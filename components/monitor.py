"""Monitor component: drift and quality of a model's logged traffic, and the retrain decision."""

from typing import List, Optional

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
    drift_share_threshold: float = 0.3,
    key_columns: Optional[List[str]] = None,
    quality_metric: str = "",
    quality_floor: float = 0.0,
    labels_key: str = "",
    min_rows: int = 500,
    sample_size: int = 20000,
    reference_rows: int = 10000,
    seed: int = 0,
) -> bool:
    """Returns whether to retrain; the decision artifact says why. Rules: kfops.monitor."""
    from kfops import config, dataio, store
    from kfops.monitor import params, service

    cfg = params.build_config(
        window,
        drift_share_threshold,
        key_columns,
        quality_metric,
        quality_floor,
        min_rows,
        sample_size,
        reference_rows,
        seed,
    )
    st = store.open_store(store_uri, config.StoreSettings.from_env())
    result = service.monitor_model(st, model_name, cfg, params.read_labels(st, labels_key))
    dataio.write_text(report.path, result.html)
    for name, value in params.metric_values(result).items():
        metrics.log_metric(name, value)
    dataio.write_json(result.to_dict(), decision.path)
    decision.metadata.update(params.decision_metadata(result))
    return result.retrain
