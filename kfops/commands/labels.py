"""`kfops labels`: deliver delayed ground truth for logged requests, and see what was delivered."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from kfops import config, dataio, errors, labels, store

DEFAULT_STORE = config.LOCAL_STORE


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops labels` with its add and status subcommands."""
    p = subparsers.add_parser(
        "labels",
        help="deliver delayed labels for logged requests (by request id)",
        description="Ground truth that arrives after the prediction, keyed by the request id the "
        "server logged (x-request-id). Each delivery is one file under labels/<name>/ in the "
        "store; a later delivery for the same request row corrects an earlier one.",
    )
    sub = p.add_subparsers(dest="labels_command", required=True, metavar="SUBCOMMAND")
    add = _common(sub.add_parser("add", help="store a file of labels (CSV or Parquet)"))
    add.add_argument(
        "--file", required=True, help="CSV or Parquet: request_id, [row,] label columns"
    )
    add.add_argument(
        "--label-column", help="the file's label column when it is not `label` (e.g. churned)"
    )
    add.set_defaults(func=add_main)
    status = _common(sub.add_parser("status", help="labels delivered so far"))
    status.set_defaults(func=status_main)


def _common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--store", default=DEFAULT_STORE, help="store: directory or s3://bucket/prefix")
    p.add_argument("--name", required=True, help="model name whose requests the labels answer")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def add_main(args: argparse.Namespace) -> int:
    """`kfops labels add`: checks the file and stores it as one delivery."""
    frame = read_file(args.file)
    st = store.open_store(args.store, config.StoreSettings.from_env())
    delivery = labels.deliver(st, args.name, frame, label_column=args.label_column)
    if args.json:
        print(json.dumps(delivery.to_dict(), sort_keys=True))
    else:
        repeats = (
            f" ({delivery.collapsed} repeated rows counted once)" if delivery.collapsed else ""
        )
        print(f"stored {delivery.rows} labels for {args.name}{repeats}: {st.url_for(delivery.key)}")
    return 0


def status_main(args: argparse.Namespace) -> int:
    """`kfops labels status`: deliveries, distinct labelled rows, first and last arrival."""
    st = store.open_store(args.store, config.StoreSettings.from_env())
    deliveries = [k for k in st.list(labels.prefix(args.name)) if k.endswith(".parquet")]
    current = labels.read(st, args.name)
    received = current[labels.RECEIVED]
    facts = {
        "model": args.name,
        "deliveries": len(deliveries),
        "labelled_rows": int(len(current)),
        "first_received": str(received.min()) if len(current) else None,
        "last_received": str(received.max()) if len(current) else None,
    }
    if args.json:
        print(json.dumps(facts, sort_keys=True))
    else:
        print(
            f"{args.name}: {facts['labelled_rows']} labelled request rows in "
            f"{facts['deliveries']} deliveries"
            + (f", {facts['first_received']} .. {facts['last_received']}" if len(current) else "")
        )
    return 0


def read_file(path: str) -> pd.DataFrame:
    """A labels file: CSV (request ids kept as text) or Parquet.

    Raises:
        DataError: missing or unreadable.
    """
    if not Path(path).is_file():
        raise errors.DataError(f"no such labels file: {path}")
    if path.endswith((".parquet", ".pq")):
        return dataio.read_frame(path)
    try:
        return pd.read_csv(path, dtype={"request_id": str, labels.REQUEST_ID: str})
    except (OSError, ValueError) as e:
        raise errors.DataError(f"cannot read labels {path}: {e}") from e
