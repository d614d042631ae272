"""The batch-scoring pipeline: plan -> ParallelFor(one shard per pod) -> merge. Composition only.

KFP runs each ParallelFor iteration as its own pod, so Kubeflow is the distributed engine: the
plan decides the shards (kfops.batchscore.plan), the merge fails the run unless every planned row
was written exactly once. A failed shard fails the loop and the run (KFP does not run the merge);
the step record names the shard and why. `parallelism` is the loop's `iteratorPolicy.
parallelismLimit`, which KFP fixes at compile time (kfp/dsl/tasks_group.py `ParallelFor`), so it
is an argument of `build`, not a run parameter.
"""

from kfops.components.outcome import outcome
from kfops.components.run_context import run_context_with
from kfops.components.score_merge import score_merge
from kfops.components.score_plan import score_plan
from kfops.components.score_shard import score_shard
from kfops.pipelines.training import configure
from kfp import dsl

from kfops import cluster

NAME = "kfops-batch-scoring"


def build(parallelism: int = 0):
    """The pipeline with at most `parallelism` shards running at once (0: all)."""

    @dsl.pipeline(name=NAME, description="Score a dataset with a registry version, sharded.")
    def batch_scoring(
        source: str = "builtin:churn",
        out: str = f"{cluster.CLUSTER_STORE_URI}/predictions/churn",
        model_name: str = "churn",
        version: str = "",
        store_uri: str = cluster.CLUSTER_STORE_URI,
        format: str = "",  # noqa: A002 (IngestConfig's name)
        delimiter: str = "",
        query: str = "",
        shards: int = 1,
        chunk_rows: int = 65536,
        run_id: str = "",
    ):
        """Scores `source` with `model_name` (champion unless `version`) into `out`."""
        p = {k: v for k, v in locals().items() if k != "parallelism"}  # parameters, not the closure
        read = {"format": format, "delimiter": delimiter, "query": query}
        done = outcome(store_uri=store_uri, run_id=run_id, job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
        configure(done, "outcome", "250m", "512Mi", retry=True, cache=False)
        with dsl.ExitHandler(done, name="run"):
            ctx = run_context_with({**p, "pipeline": NAME})
            configure(ctx, "run context", "500m", "512Mi", retry=True, cache=False)
            run = {"store_uri": store_uri, "run_id": ctx.output}
            planned = score_plan(model_name=model_name, source=source, version=version,
                                 shards=shards, out=out, **read, **run)  # fmt: skip
            configure(planned, "plan", "1", "2Gi", cache=False)
            with dsl.ParallelFor(planned.output, parallelism=parallelism, name="shards") as shard:
                # run_id as run_context derives it, not its output: see score_shard's docstring
                scored = score_shard(model_name=model_name, source=source, shard=shard, out=out,
                                     chunk_rows=chunk_rows, store_uri=store_uri, run_id=run_id,
                                     job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER, **read)  # fmt: skip
                # not retried: KFP cannot tell bad rows from a lost pod (the S3 client retries)
                configure(scored, "score shard", "1", "4Gi", cache=False)
            merged = score_merge(plan=planned.output, written=dsl.Collected(scored.output),
                                 out=out, **run)  # fmt: skip
            configure(merged, "merge", "1", "2Gi", cache=False)

    return batch_scoring


batch_scoring = build()
