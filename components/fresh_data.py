"""Fresh-data component: what retraining reads (the champion's snapshot plus labelled traffic)."""

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def fresh_data(
    store_uri: str,
    model_name: str,
    source: str,
    dataset: dsl.Output[dsl.Artifact],
    retrain_on: str = "fresh",
    fresh_window: str = "all",
    min_labelled_rows: int = 200,
    max_old_share: float = 0.5,
    dedup: bool = True,
    seed: int = 0,
) -> str:
    """Returns the source the training pipeline ingests. Rules: kfops.monitor.fresh."""
    from kfops import config, dataio, parameters, store
    from kfops.monitor import fresh as core

    cfg = parameters.build(
        core.FreshDataConfig,
        retrain_on=retrain_on,
        fresh_window=fresh_window,
        min_labelled_rows=min_labelled_rows,
        max_old_share=max_old_share,
        dedup=dedup,
        seed=seed,
    )
    if cfg.retrain_on == "source":
        dataio.write_json({"source": source, "retrain_on": "source"}, dataset.path)
        return source
    st = store.open_store(store_uri, config.StoreSettings.from_env())
    built = core.build(st, model_name, cfg)
    facts = {"source": built.uri, "sha256": built.snapshot.sha256, **built.facts}
    dataio.write_json(facts, dataset.path)
    dataset.metadata.update({"sha256": built.snapshot.sha256, "rows": built.facts["rows"],
                             "labelled_rows": built.facts["labelled_rows"]})  # fmt: skip
    return built.uri
