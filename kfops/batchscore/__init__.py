"""Batch scoring: a source scored by a registry version, sharded, as Parquet in object storage.

`plan` cuts the source's rows into shards (the list a KFP ParallelFor fans out over, one pod per
shard); `rows` reads one shard's row range of a file or SQL source (never the whole source);
`score` scores one shard through the server's validation and compiled fast path and writes its
part; `score.merge` checks that every row arrived exactly once and writes the manifest. No kfp
import: components/score_*.py wrap these, pipelines/batch_scoring.py composes them.
"""

from kfops.batchscore.plan import ROW_KEY, ScoreConfig, plan
from kfops.batchscore.score import (
    MANIFEST,
    load,
    merge,
    open_run,
    part_key,
    read_shard,
    resolve_version,
    run_shard,
    score_frame,
    write_part,
)

__all__ = [
    "MANIFEST",
    "ROW_KEY",
    "ScoreConfig",
    "load",
    "merge",
    "open_run",
    "part_key",
    "plan",
    "read_shard",
    "resolve_version",
    "run_shard",
    "score_frame",
    "write_part",
]
