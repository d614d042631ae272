"""Ingest component: any source URI -> a Parquet Dataset with rows, columns, sha256, source."""

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def ingest(source: str, data: dsl.Output[dsl.Dataset], format: str = ""):
    """Reads builtin:, local, http(s) or s3:// data. Rules: kfops.ingest."""
    from kfops import config, dataio
    from kfops import ingest as core

    settings = config.StoreSettings.from_env()
    result = core.ingest(source, format=format or None, settings=settings)
    data.metadata.update(dataio.write_frame(result.frame, data.path))
    data.metadata.update({"source": source, "format": result.format})
