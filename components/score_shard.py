"""Score-shard component: one shard's rows predicted and written as one Parquet part."""

from typing import Dict

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def score_shard(
    store_uri: str,
    model_name: str,
    source: str,
    shard: Dict,
    out: str,
    run_id: str,
    job_id: str = "",
    format: str = "",  # noqa: A002 (IngestConfig's name)
    delimiter: str = "",
    query: str = "",
    chunk_rows: int = 65536,
) -> Dict:
    """Returns the part's key, rows and key column. Rules: kfops.batchscore.score.

    The run id is `run_id or job_id`, as run_context computes it: not run_context's output,
    because kfp.local 2.17 overwrites every task-output input of a ParallelFor body with the
    loop item (kfp/local/orchestrator/task_spec_utils.py,
    create_parameter_loop_iteration_task_spec, the `task_output_parameter` branch).
    """
    from kfops import batchscore, recording, store

    name = f"score-shard-{int(shard['index'])}"
    with recording.recorded(name, store_uri, run_id or job_id, {"rows": shard["rows"]}) as step:
        reg, settings, read, cfg = batchscore.open_run(store_uri, source, out, format, delimiter,
                                                       query, chunk_rows=chunk_rows)  # fmt: skip
        target = store.open_store(cfg.out, settings)
        written = batchscore.run_shard(reg, model_name, source, shard, target, cfg.chunk_rows,
                                       settings, **read)  # fmt: skip
        step.output("part", key=written["key"], rows=written["rows"], paths=written["paths"])
    return written
