"""Ingest: read a source (file, URL, partitions, database) into a frame.

Sources: builtin:, a path, file://, http(s)://, s3://, a directory or s3 prefix of partitions, a
SQLAlchemy database URL. The stage is `core` (config, result, `ingest`); `fetch` turns a URI into
a local file and `readers` a file into a frame, per format; `sql` reads databases, `partitions`
directories of files, `incremental` only what no successful run consumed (kfops.watermarks).
Re-exported here.
"""

from kfops.ingest.core import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    FORMATS,
    IngestConfig,
    IngestResult,
    ingest,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "FORMATS",
    "IngestConfig",
    "IngestResult",
    "ingest",
]
