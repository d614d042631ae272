"""Score-plan component: the shard list a ParallelFor fans out over, and the version to use."""

from typing import Dict, List

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def score_plan(
    store_uri: str,
    model_name: str,
    source: str,
    out: str,
    run_id: str,
    version: str = "",
    format: str = "",  # noqa: A002 (IngestConfig's name)
    delimiter: str = "",
    query: str = "",
    shards: int = 1,
) -> List[Dict]:
    """Returns one dict per shard (rows, segments, version, scored_at). Rules: kfops.batchscore."""
    from kfops import batchscore, recording

    with recording.recorded("score-plan", store_uri, run_id, {"shards": shards}) as step:
        reg, settings, read, cfg = batchscore.open_run(store_uri, source, out, format,
                                                       delimiter, query, shards=shards)  # fmt: skip
        chosen = batchscore.resolve_version(reg, model_name, version)
        shard_list = batchscore.plan(source, cfg.shards, chosen, settings, **read)
        step.output("plan", version=chosen, shards=len(shard_list),
                    rows=sum(s["rows"] for s in shard_list))  # fmt: skip
    return shard_list
