"""`kfops schema show|diff|accept`: the schema a model's data is held to, changed on purpose.

A model's first run infers its schema; later runs validate each batch against the champion's
(kfops.validate.contract). When the data changes on purpose (a unit changed, categories were
renamed), `diff` shows what accepting a batch would change and `accept` records the widened
schema in the registry with who, why and when; the next `kfops run` validates against it.
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any

from kfops import config, errors, ingest, store
from kfops import validate as validation
from kfops.commands import runs as runs_command
from kfops.validate import contract


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops schema` with show, diff and accept."""
    p = subparsers.add_parser("schema", help="a model's data schema: show, diff, accept a change")
    sub = p.add_subparsers(dest="schema_command", required=True, metavar="SUBCOMMAND")
    show = runs_command.with_common(
        sub.add_parser("show", help="the schema the next run validates against, and its history")
    )
    show.add_argument("name", help="model name")
    show.set_defaults(func=show_main)
    for command, summary, func in (
        ("diff", "what accepting a batch would change, and what in it blocks today", diff_main),
        ("accept", "record the batch's widened schema as the model's schema", accept_main),
    ):
        q = runs_command.with_common(sub.add_parser(command, help=summary))
        q.add_argument("name", help="model name")
        q.add_argument(
            "--source", required=True, help="the batch: path, http(s)://, s3://, builtin:"
        )
        q.add_argument("--format", default=None, help="data format (default: from the extension)")
        if command == "accept":
            q.add_argument("--reason", required=True, help="why the data changed on purpose")
            q.add_argument(
                "--by", default=None, help="who reviewed the change (default: the OS user)"
            )
        q.set_defaults(func=func)


def _store(args: argparse.Namespace) -> store.Store:
    return store.open_store(args.store, config.StoreSettings.from_env())


def show_main(args: argparse.Namespace) -> int:
    """`kfops schema show NAME`."""
    st = _store(args)
    held = contract.resolve(st, args.name)
    out = {
        "model": args.name,
        "validates_against": held.source,
        "columns": None if held.schema is None else len(held.schema.columns),
        "accepted": contract.history(st, args.name),
    }
    if args.json:
        runs_command.print_json(out)
        return 0
    print(f"{args.name}: the next run validates against {held.source}")
    for record in out["accepted"]:
        print(
            f"  accepted #{record['number']} {record['at']} by {record['by']} "
            f"(champion then: {record['base_version']}): {record['reason']}"
        )
    return 0


def _compare(args: argparse.Namespace) -> tuple[store.Store, Any, Any, list, Any]:
    st = _store(args)
    held = contract.resolve(st, args.name)
    if held.schema is None:
        raise errors.NotFound(
            f"model {args.name!r} has no champion or accepted schema in {args.store}: "
            "its first `kfops run` infers one"
        )
    frame = ingest.ingest(args.source, format=args.format, settings=config.StoreSettings.from_env())
    proposed = contract.propose(held.schema, frame.frame)
    report = validation.validate(frame.frame, held.schema)
    return st, held, proposed, contract.diff(held.schema, proposed), report


def diff_main(args: argparse.Namespace) -> int:
    """`kfops schema diff NAME --source S`."""
    _, held, _, changes, report = _compare(args)
    if args.json:
        runs_command.print_json(
            {"against": held.source, "changes": changes, "blocking": _blocking(report)}
        )
        return 0
    _print_diff(held.source, changes, report)
    return 0


def accept_main(args: argparse.Namespace) -> int:
    """`kfops schema accept NAME --source S --reason WHY`."""
    st, held, proposed, changes, report = _compare(args)
    if not changes:
        print(f"{args.name}: the batch already fits {held.source}; nothing to accept")
        return 0
    pointer = contract.accept(
        st, args.name, proposed, by=args.by or getpass.getuser(), reason=args.reason
    )
    if args.json:
        runs_command.print_json({"accepted": pointer, "changes": changes})
        return 0
    _print_diff(held.source, changes, report)
    print(
        f"accepted #{pointer['number']} as {args.name}'s schema by {pointer['by']} at "
        f"{pointer['at']}: {contract.SCHEMA_DIR}/{pointer['file']}"
    )
    return 0


def _blocking(report: validation.ValidationReport) -> list[dict[str, Any]]:
    return [a.to_dict() for a in report.blocking]


def _print_diff(source: str, changes: list, report: validation.ValidationReport) -> None:
    print(f"against {source}: {len(changes)} change(s), {len(report.blocking)} blocking today")
    for c in changes:
        extra = ""
        if c["change"] == "domain":
            extra = f" (+{c['added'][:10]} -{c['removed'][:10]})"
        print(f"  {c['column']:<24} {c['change']:<14} {c['before']} -> {c['after']}{extra}")
    for a in report.blocking:
        print(f"  blocks: {a.column} {a.rule}: {a.message()}")
