"""Champion component: the current champion's evaluation on the candidate's test split."""

from typing import List

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def champion(
    test_data: dsl.Input[dsl.Dataset],
    data_schema: dsl.Input[dsl.Artifact],
    store_uri: str,
    model_name: str,
    champion_evaluation: dsl.Output[dsl.Artifact],
    run_id: str,
    slice_columns: List[str] = [],  # noqa: B006 (KFP reads the default; never mutated)
    sensitive_column: str = "",
) -> str:
    """Returns the champion version ("" if none). Rules: kfops.champion."""
    from kfops import champion as core
    from kfops import config, dataio, recording, registry, schema, store

    with recording.recorded("champion", store_uri, run_id, {"model_name": model_name}) as step:
        reg = registry.Registry(store.open_store(store_uri, config.StoreSettings.from_env()))
        record = core.resolve(
            reg,
            model_name,
            lambda: dataio.read_frame(test_data.path),
            schema.Schema.load(data_schema.path),
            slice_columns=slice_columns,
            sensitive_column=sensitive_column,
        )
        dataio.write_json(record, champion_evaluation.path)
        facts = {k: record.get(k) for k in ("exists", "version", "comparable")}
        champion_evaluation.metadata.update(facts)
        step.output("champion", **facts)
    return record.get("version") or ""
