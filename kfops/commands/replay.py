"""`kfops replay`: send any dataset as traffic (with request ids) to a served model."""

from __future__ import annotations

import argparse

from kfops import errors, parameters, replay
from kfops.commands import traffic as traffic_cmd


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops replay`."""
    p = subparsers.add_parser(
        "replay",
        help="send any dataset as traffic (with request ids) to a running server",
        description="Sends the rows of --source in V1 batches to --url, each request with an "
        "x-request-id, so the inference log fills with your own data to monitor. --labels-out "
        "writes --label per request id and row, for `kfops labels add` or monitor --labels.",
    )
    parameters.add_flags(p, replay.ReplayConfig)
    p.add_argument("--labels-out", help="write the accepted rows' --label here (Parquet)")
    p.add_argument("--json", action="store_true", help="print the tally as one JSON object")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Replays the source and prints the tally; exit 1 when the server rejected every request."""
    cfg = parameters.from_args(replay.ReplayConfig, args)
    if args.labels_out and not cfg.label:
        raise errors.ConfigError("--labels-out needs --label (the column to write)")
    return traffic_cmd.report(replay.replay(cfg), cfg.url, args)
