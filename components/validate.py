"""Validate component: infer or check a schema; blocking anomalies fail the step."""

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def validate(
    data: dsl.Input[dsl.Dataset],
    label: str,
    data_schema: dsl.Output[dsl.Artifact],
    anomalies: dsl.Output[dsl.Artifact],
    report: dsl.Output[dsl.HTML],
    store_uri: str,
    run_id: str,
    task: str = "",
    schema_uri: str = "",
    strict_categories: bool = False,
    time_column: str = "",
    group_column: str = "",
):
    """Infers the schema (or loads `schema_uri`) and validates. Rules: kfops.validate."""
    from kfops import config, dataio, parameters, recording, schema, split
    from kfops import validate as core
    from kfops.reports import validation as rendering

    params = {"label": label, "schema_uri": schema_uri, "strict_categories": strict_categories}
    with recording.recorded("validate", store_uri, run_id, params) as step:
        cfg = parameters.build(
            core.ValidateConfig, strict_categories=strict_categories, schema_uri=schema_uri
        )
        # label, task and the time and group columns mean what they mean to split
        data_cfg = parameters.build(
            split.SplitConfig,
            label=label,
            task=task,
            time_column=time_column,
            group_column=group_column,
        )
        df = dataio.read_frame(data.path)
        if cfg.schema_uri:
            expected = schema.load_uri(cfg.schema_uri, config.StoreSettings.from_env())
        else:
            expected = core.infer_schema(
                df,
                data_cfg.label,
                task=data_cfg.task,
                time_column=data_cfg.time_column,
                group_column=data_cfg.group_column,
            )
        result = core.validate(df, expected, cfg)
        expected.save(data_schema.path)
        data_schema.metadata.update(
            {"label": expected.label, "task": expected.task, "features": expected.feature_names}
        )
        dataio.write_json(result.to_dict(), anomalies.path)
        anomalies.metadata.update(
            {"blocking": len(result.blocking), "total": len(result.anomalies)}
        )
        page = rendering.validation_html(result, expected, df)
        dataio.write_text(report.path, page)  # the KFP HTML artifact
        step.report("validation", page)  # runs/<id>/reports/validation.html (kfops ui)
        step.metric("anomalies", len(result.anomalies))
        core.raise_for_blocking(result)
