"""Ingest: read a source URI (builtin:, path, file://, http(s)://, s3://) into a frame.

The stage is `core` (config, result, `ingest`); `fetch` turns a URI into a local file and
`readers` a file into a frame, per format. Re-exported here.
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
