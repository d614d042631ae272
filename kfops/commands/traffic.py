"""`kfops simulate-traffic`: a bounded stream of (optionally drifted) churn rows to a server."""

from __future__ import annotations

import argparse
import json

from kfops import dataio, parameters, traffic


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops simulate-traffic`."""
    p = subparsers.add_parser(
        "simulate-traffic",
        help="send builtin:churn requests (optionally drifted) to a running server",
        description="Sends --rows churn rows in V1 batches to URL, so the inference log fills "
        "with traffic to monitor. --labels-out writes the ground truth for quality monitoring.",
    )
    parameters.add_flags(p, traffic.TrafficConfig)
    p.add_argument("--labels-out", help="write the sent rows' labels here (Parquet)")
    p.add_argument("--json", action="store_true", help="print the tally as one JSON object")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Sends the traffic and prints the tally; exit 1 when the server rejected every request."""
    cfg = parameters.from_args(traffic.TrafficConfig, args)
    return report(traffic.simulate(cfg), cfg.url, args)


def report(result, url: str, args: argparse.Namespace) -> int:
    """Writes --labels-out, prints the tally (or --json); exit 1 when every request was rejected.

    Shared by `simulate-traffic` and `replay`, whose results have the same shape.
    """
    if args.labels_out:
        dataio.write_frame(result.labels, args.labels_out)
    if args.json:
        print(json.dumps(result.to_dict(), sort_keys=True))
    else:
        print(
            f"sent {result.rows_sent} rows in {result.requests} requests to {url} "
            f"in {result.seconds:.1f}s: {result.rows_accepted} accepted, statuses {result.statuses}"
        )
        if result.first_error:
            print(f"  first rejection: {result.first_error}")
    return 0 if result.rows_accepted else 1
