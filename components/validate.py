"""Validate component: infer or check a schema; blocking anomalies fail the step."""

from typing import Dict, List

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
    model_name: str = "",
    range_margin: float = 0.2,
    max_unseen_fraction: float = 0.01,
    rule_severities: Dict[str, str] = {},  # noqa: B006 ({} = every rule's default severity)
    sensitive_column: str = "",
    drop_columns: List[str] = [],  # noqa: B006 (KFP reads the default; never mutated)
    ignore_columns: List[str] = [],  # noqa: B006 (KFP reads the default; never mutated)
    id_columns: List[str] = [],  # noqa: B006 (KFP reads the default; never mutated)
    column_types: Dict[str, str] = {},  # noqa: B006 ({} = every column as inferred)
):
    """Validates against `schema_uri`, else the model's champion (or accepted) schema.

    With neither (a model's first run), infers one. Rules: kfops.validate; which schema:
    kfops.validate.contract.
    """
    from kfops import config, dataio, parameters, recording, schema, split, store
    from kfops import validate as core
    from kfops.reports import validation as rendering
    from kfops.validate import contract, stats

    params = {"label": label, "schema_uri": schema_uri, "strict_categories": strict_categories,
              "drop_columns": drop_columns, "ignore_columns": ignore_columns,
              "id_columns": id_columns}  # fmt: skip
    with (
        recording.recorded("validate", store_uri, run_id, params) as step,
        stats.shared_factorize(),  # the frame never changes here: each text column hashed once
    ):
        cfg = parameters.build(
            core.ValidateConfig,
            strict_categories=strict_categories,
            schema_uri=schema_uri,
            range_margin=range_margin,
            max_unseen_fraction=max_unseen_fraction,
            rule_severities=rule_severities,
        )
        sensitive = sensitive_column or None  # EvalConfig.sensitive_column's none_as
        # label, task and the time and group columns mean what they mean to split
        data_cfg = parameters.build(
            split.SplitConfig,
            label=label,
            task=task,
            time_column=time_column,
            group_column=group_column,
        )
        columns = parameters.build(
            schema.ColumnConfig,
            drop_columns=drop_columns,
            ignore_columns=ignore_columns,
            id_columns=id_columns,
            column_types=column_types,
        )
        # --drop: gone before inference and every check, so never in the schema or the model
        df = columns.drop(dataio.read_frame(data.path))
        columns.check_known(df.columns, ("ignore_columns", "id_columns"))
        settings = config.StoreSettings.from_env()
        if cfg.schema_uri:
            expected, source = schema.load_uri(cfg.schema_uri, settings), cfg.schema_uri
        elif model_name:
            held = contract.resolve(store.open_store(store_uri, settings), model_name)
            expected, source = held.schema, held.source
        else:
            expected, source = None, "inferred"
        if expected is None:
            expected = core.infer_schema(
                df,
                data_cfg.label,
                task=data_cfg.task,
                time_column=data_cfg.time_column,
                group_column=data_cfg.group_column,
                id_columns=columns.id_columns,
                ignore_columns=columns.ignore_columns,
            )
        else:  # --task, --ignore, --id, --type may restate a held schema, never change it
            columns.check_held(expected, source, data_cfg.task)
        result = core.validate(df, expected, cfg, sensitive_column=sensitive)
        expected.save(data_schema.path)
        data_schema.metadata.update(
            {"label": expected.label, "task": expected.task, "features": expected.feature_names}
        )
        data_schema.metadata["schema_source"] = source
        step.output("schema", source=source)
        dataio.write_json(result.to_dict(), anomalies.path)
        anomalies.metadata.update(
            {"blocking": len(result.blocking), "total": len(result.anomalies)}
        )
        page = rendering.validation_html(result, expected, df)
        dataio.write_text(report.path, page)  # the KFP HTML artifact
        step.report("validation", page)  # runs/<id>/reports/validation.html (kfops ui)
        step.metric("anomalies", len(result.anomalies))
        core.raise_for_blocking(result)
