"""Ingest component: any source URI -> a Parquet Dataset with rows, columns, sha256, source."""

from typing import Dict

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def ingest(
    source: str,
    data: dsl.Output[dsl.Dataset],
    store_uri: str,
    run_id: str,
    format: str = "",
    delimiter: str = "",
    query: str = "",
    incremental: bool = False,
    incremental_column: str = "",
    retention: int = 0,
    column_types: Dict[str, str] = {},  # noqa: B006 ({} = every column as inferred)
):
    """Reads builtin:, local, http(s), s3://, partitioned or SQL data. Rules: kfops.ingest."""
    from kfops import config, parameters, recording, schema
    from kfops import ingest as core
    from kfops import store as store_mod

    recorded = {"format": format, "column_types": column_types}
    with recording.recorded("ingest", store_uri, run_id, recorded) as step:
        cfg = parameters.build(
            core.IngestConfig, source=source, format=format, delimiter=delimiter, query=query,
            incremental=incremental, incremental_column=incremental_column, retention=retention,
        )  # fmt: skip
        settings = config.StoreSettings.from_env()
        result = core.ingest(
            cfg.source, format=cfg.format, settings=settings, delimiter=cfg.delimiter,
            query=cfg.query, incremental=cfg.incremental,
            incremental_column=cfg.incremental_column, retention=cfg.retention,
            store=store_mod.open_store(store_uri, settings) if cfg.incremental else None,
            run_id=run_id, arrow=True,
        )  # fmt: skip
        columns = parameters.build(schema.ColumnConfig, column_types=column_types)
        # --type: every later step sees the columns as the user declared them
        data.metadata.update(result.write(data.path, columns))
        data.metadata.update(result.metadata())  # the source with any credentials masked
        step.input("source", result.source, data.metadata.get("source_sha256"))
        facts = {"query": result.query, "source_rows": result.rows, **(result.incremental or {})}
        step.output(
            "data", sha256=data.metadata["sha256"], rows=data.metadata["rows"],
            **{k: v for k, v in facts.items() if v is not None},
        )  # fmt: skip
