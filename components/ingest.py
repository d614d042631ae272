"""Ingest component: any source URI -> a Parquet Dataset with rows, columns, sha256, source."""

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
):
    """Reads builtin:, local, http(s) or s3:// data. Rules: kfops.ingest."""
    from kfops import config, dataio, parameters, recording
    from kfops import ingest as core

    with recording.recorded("ingest", store_uri, run_id, {"format": format}) as step:
        cfg = parameters.build(core.IngestConfig, source=source, format=format, delimiter=delimiter)
        settings = config.StoreSettings.from_env()
        result = core.ingest(
            cfg.source, format=cfg.format, settings=settings, delimiter=cfg.delimiter
        )
        data.metadata.update(dataio.write_frame(result.frame, data.path))
        data.metadata.update(result.metadata())  # the source with any credentials masked
        step.input("source", result.source, data.metadata.get("source_sha256"))
        step.output("data", sha256=data.metadata["sha256"], rows=data.metadata["rows"])
