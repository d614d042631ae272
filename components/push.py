"""Push component: register the blessed model as a new version and move the champion pointer.

With promote="manual" the version is staged for `kfops models approve` instead.
"""

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def push(
    model: dsl.Input[dsl.Model],
    data_schema: dsl.Input[dsl.Artifact],
    evaluation: dsl.Input[dsl.Artifact],
    blessing: dsl.Input[dsl.Artifact],
    data: dsl.Input[dsl.Dataset],
    train_data: dsl.Input[dsl.Dataset],
    store_uri: str,
    model_name: str,
    registered: dsl.Output[dsl.Artifact],
    model_card: dsl.Output[dsl.Markdown],
    run_id: str,
    seed: int = 0,
    code_version: str = "",
    promote: str = "auto",
) -> str:
    """Returns the new version. Rules: kfops.push."""
    from kfops.components._image import KFOPS_IMAGE as image

    from kfops import config, dataio, features, recording, registry, schema, snapshots, store
    from kfops import push as core
    from kfops.parameters import build

    params = {"model_name": model_name, "promote": promote}
    with recording.recorded("push", store_uri, run_id, params) as step:
        lineage = core.build_lineage(
            run_id=run_id,
            pipeline="training",
            source=data.metadata.get("source"),
            data_sha256=data.metadata.get("sha256"),
            rows=data.metadata.get("rows"),
            seed=seed,
            code_version=code_version,
            image=image,
            estimator=model.metadata.get("estimator"),
            model_params=model.metadata.get("params"),
            model_sha256=model.metadata.get("sha256"),
            n_threads=model.metadata.get("n_threads"),  # the sha256 holds at any count
            decision=model.metadata.get("decision") or {},  # positive class, threshold
        )
        # a SQL source's query and the rows the source gave (kfops.ingest.core.IngestResult)
        lineage.update({k: v for k, v in data.metadata.items() if k in ("query", "source_rows")})
        st = store.open_store(store_uri, config.StoreSettings.from_env())
        # the exact rows the model was trained on, kept by sha256 (kfops.snapshots)
        lineage.update(snapshots.keep_training_data(st, data.path, {"source": lineage["source"]}))
        reg = registry.Registry(st)
        result = core.push(
            reg,
            model_name,
            model_path=model.path,
            # the raw inputs of derived features are inputs the server must receive
            data_schema=features.served_schema(
                schema.Schema.load(data_schema.path), model.metadata
            ),
            evaluation=dataio.read_json(evaluation.path),
            blessing=dataio.read_json(blessing.path),
            reference=core.reference_from_file(train_data.path, seed=seed),
            lineage=lineage,
            config=build(core.PushConfig, promote=promote),
        )
        dataio.write_json(
            {
                "name": result.name,
                "version": result.version,
                "uri": result.uri,
                "staged": result.staged,
                "files": result.files,
                "lineage": lineage,
            },
            registered.path,
        )
        registered.metadata.update(
            {"version": result.version, "uri": result.uri, "staged": result.staged, **lineage}
        )
        dataio.write_text(model_card.path, result.model_card)
        step.output(
            "registered",
            model_name=result.name,
            version=result.version,
            uri=result.uri,
            staged=result.staged,
        )
    return result.version
