"""`kfops score`: the batch-scoring pipeline on this machine through kfp.local.

The same compiled-in-memory pipeline KFP runs (pipelines/batch_scoring.py): a plan step, one
shard step per ParallelFor iteration, a merge that checks the rows. Flags come from the stage
surfaces (ScoreConfig, IngestConfig), so they match the pipeline's parameters.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kfops import config, errors, ingest, localrun, parameters
from kfops import store as kstore

SUMMARY = "score a dataset with a registered model, sharded, into Parquet (kfp.local)"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops score`."""
    from kfops import batchscore  # noqa: PLC0415 (only when this command runs)

    p = subparsers.add_parser(
        "score",
        help=SUMMARY,
        description="Scores every row of --source with model --name (its champion unless "
        "--version) and writes prediction, probability, model version and scored_at per row key "
        "as Parquet parts under --out, one per shard, plus scored.json once the rows add up.",
    )
    source = parameters.surface(ingest.IngestConfig)
    for flag in ("source", "format", "delimiter", "query"):
        parameters.add_flag(p, f"--{flag}", source[flag], required=flag == "source")
    p.add_argument("--name", required=True, help="registered model name")
    p.add_argument("--version", default="", help="model version (default: the champion)")
    for name, param in parameters.surface(batchscore.ScoreConfig).items():
        parameters.add_flag(p, f"--{name.replace('_', '-')}", param, required=name == "out")
    p.add_argument("--store", default=config.LOCAL_STORE, help="registry store (dir or s3://)")
    p.add_argument("--runs-dir", default=".kfops/runs", help="where run directories and logs go")
    p.add_argument("--json", action="store_true", help="print the manifest as one JSON object")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Runs the pipeline; prints the manifest, or the failed step and its one-line reason."""
    from kfops import batchscore  # noqa: PLC0415
    from kfops.pipelines import batch_scoring  # noqa: PLC0415 (kfp import only when run)

    cfg = parameters.build(batchscore.ScoreConfig, out=_local(args.out), shards=args.shards,
                           parallelism=args.parallelism, chunk_rows=args.chunk_rows)  # fmt: skip
    arguments = {
        "source": _local(args.source), "out": cfg.out, "model_name": args.name,
        "version": args.version, "store_uri": _local(args.store), "format": args.format,
        "delimiter": args.delimiter, "query": args.query, "shards": cfg.shards,
        "chunk_rows": cfg.chunk_rows,
    }  # fmt: skip
    summary, _ = localrun.run_pipeline(
        batch_scoring.build(cfg.parallelism), arguments, args.runs_dir
    )
    if summary.status != "succeeded":  # the failed step's own exit code, as `kfops run` does
        failed = errors.PipelineFailed(summary.failed_step or "a step", summary.error or "?")
        print(f"kfops: error: {failed} (log: {summary.log})", file=sys.stderr)
        return summary.exit_code or failed.exit_code
    out = kstore.open_store(cfg.out, config.StoreSettings.from_env())
    manifest = json.loads(out.get_bytes(batchscore.MANIFEST))
    if args.json:
        json.dump({**manifest, "run_id": summary.run_id}, sys.stdout)
        print()
    else:
        print(f"scored {manifest['rows']} rows with {args.name} v{manifest['version']} in "
              f"{len(manifest['parts'])} shards -> {cfg.out} ({summary.duration_s:.1f} s, "
              f"run {summary.run_id})")  # fmt: skip
    return 0


def _local(uri: str) -> str:
    """Local paths made absolute: the steps run as subprocesses (or pods) elsewhere."""
    if not uri or "://" in uri or uri.startswith("builtin:"):
        return uri
    return str(Path(uri).expanduser().resolve())
