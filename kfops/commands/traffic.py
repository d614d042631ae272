"""`kfops simulate-traffic`: a bounded stream of (optionally drifted) churn rows to a server."""

from __future__ import annotations

import argparse
import json

from kfops import dataio, traffic


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops simulate-traffic`."""
    p = subparsers.add_parser(
        "simulate-traffic",
        help="send builtin:churn requests (optionally drifted) to a running server",
        description="Sends --rows churn rows in V1 batches to URL, so the inference log fills "
        "with traffic to monitor. --labels-out writes the ground truth for quality monitoring.",
    )
    p.add_argument("--url", default="http://127.0.0.1:8080", help="base URL of `kfops serve`")
    p.add_argument("--name", default="churn", help="served model name")
    p.add_argument("--rows", type=int, default=1000, help=f"rows to send (max {traffic.MAX_ROWS})")
    p.add_argument("--drift", type=float, default=0.0, help="churn drift knob (0: none, 1: strong)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=50, help="rows per request")
    p.add_argument("--labels-out", help="write the sent rows' labels here (Parquet)")
    p.add_argument("--json", action="store_true", help="print the tally as one JSON object")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Sends the traffic and prints the tally; exit 1 when the server rejected every request."""
    cfg = traffic.TrafficConfig(
        args.url, args.name, args.rows, args.drift, args.seed, args.batch_size
    )
    result = traffic.simulate(cfg)
    if args.labels_out:
        dataio.write_frame(result.labels, args.labels_out)
    if args.json:
        print(json.dumps(result.to_dict(), sort_keys=True))
    else:
        print(
            f"sent {result.rows_sent} rows in {result.requests} requests to {cfg.url} "
            f"in {result.seconds:.1f}s: {result.rows_accepted} accepted, statuses {result.statuses}"
        )
        if result.first_error:
            print(f"  first rejection: {result.first_error}")
    return 0 if result.rows_accepted else 1
