"""`kfops models list|show|promote|approve|reject|rollback` (and `lineage`: kfops.commands.runs).

Works on either store: a directory (default `.kfops/store`, where `kfops run` registers models) or
`s3://bucket/prefix` with the endpoint and keys from MINIO_ENDPOINT, MINIO_ACCESS_KEY,
MINIO_SECRET_KEY and MINIO_SECURE. Tables for people, `--json` for machines.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from typing import Any

from kfops import approval, config, errors, registry, store
from kfops.commands import runs as runs_command


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops models` with its subcommands."""
    p = subparsers.add_parser(
        "models", help="registered models: list, show, promote, approve, reject, rollback"
    )
    sub = p.add_subparsers(dest="models_command", required=True, metavar="SUBCOMMAND")
    runs_command.with_common(
        sub.add_parser("list", help="models, their versions and champion")
    ).set_defaults(func=list_main)
    show = runs_command.with_common(sub.add_parser("show", help="one version's files and metadata"))
    show.add_argument("name", help="model name")
    show.add_argument("version", nargs="?", help="version (default: the champion)")
    show.add_argument(
        "--verify", action="store_true", help="download every file and check its sha256"
    )
    show.set_defaults(func=show_main)
    promote = runs_command.with_common(
        sub.add_parser("promote", help="make a version the champion")
    )
    promote.add_argument("name", help="model name")
    promote.add_argument("version", help="version to promote")
    promote.set_defaults(func=promote_main)
    approve = _decision_parser(
        sub, "approve", "approves", "approve a staged version (--promote manual): record who and "
        "why, then make it the champion",
    )  # fmt: skip
    approve.add_argument(
        "--allow-older", action="store_true",
        help="approve a version older than the champion, moving the champion back to it",
    )  # fmt: skip
    approve.set_defaults(func=approve_main)
    _decision_parser(
        sub, "reject", "rejects", "reject a staged version nobody will approve: record who and "
        "why; it stops waiting and can no longer be approved",
    ).set_defaults(func=reject_main)  # fmt: skip
    rollback = runs_command.with_common(
        sub.add_parser("rollback", help="go back to the previous champion")
    )
    rollback.add_argument("name", help="model name")
    rollback.set_defaults(func=rollback_main)
    runs_command.add_lineage_parser(sub)


def _decision_parser(
    sub: argparse._SubParsersAction, command: str, who: str, summary: str
) -> argparse.ArgumentParser:
    """`approve` or `reject`: NAME VERSION --by --reason, declared once for both."""
    p = runs_command.with_common(sub.add_parser(command, help=summary))
    p.add_argument("name", help="model name")
    p.add_argument("version", help=f"staged version to {command}")
    p.add_argument("--by", required=True, help=f"who {who} (recorded)")
    p.add_argument("--reason", required=True, help="why (recorded)")
    return p


def _registry(args: argparse.Namespace) -> registry.Registry:
    # The environment is read here, at the edge, and nowhere below.
    return registry.Registry(store.open_existing(args.store, config.StoreSettings.from_env()))


def require_model(reg: registry.Registry, name: str) -> list[str]:
    """The model's versions; a name with none is unknown, not "without a champion yet".

    Raises:
        NotFound: no version of `name` in the store (the message lists some known names).
    """
    versions = reg.versions(name)
    if not versions:
        known = reg.models()
        shown = ", ".join(known[:10]) + (f" (+{len(known) - 10} more)" if len(known) > 10 else "")
        raise errors.NotFound(
            f"unknown model {name!r} in {reg.store.uri}; registered: {shown or 'none'}"
        )
    return versions


def list_main(args: argparse.Namespace) -> int:
    """`kfops models list`."""
    reg = _registry(args)
    rows = [
        {
            "name": name,
            "champion": reg.champion(name),
            "versions": reg.versions(name),
            "staged": approval.pending(reg, name),
        }
        for name in reg.models()
    ]
    if args.json:
        runs_command.print_json(rows)
    elif not rows:
        print(f"no models registered in {reg.store.uri}")
    else:
        table = [
            (
                r["name"], r["champion"] or "-", r["versions"][-1], len(r["versions"]),
                ",".join(r["staged"]) or "-",
            )
            for r in rows
        ]  # fmt: skip
        head = ("NAME", "CHAMPION", "LATEST", "VERSIONS", "STAGED")
        print(runs_command.table(head, table))
    return 0


def show_main(args: argparse.Namespace) -> int:
    """`kfops models show NAME [VERSION] [--verify]`."""
    reg = _registry(args)
    versions = require_model(reg, args.name)
    champion = reg.champion(args.name)
    version = args.version or champion
    if version is None:
        known = ", ".join(versions)
        raise errors.NotFound(f"model {args.name!r} has no champion; name a version ({known})")
    manifest = reg.manifest(args.name, version)
    if args.verify:
        with tempfile.TemporaryDirectory(prefix="kfops-verify-") as tmp:
            reg.fetch(args.name, version, tmp)  # raises IntegrityError naming the bad file
    detail = {
        **manifest,
        "champion": version == champion,
        "verified": bool(args.verify),
        "approval": approval.entries(reg, args.name).get(version),
    }
    if args.json:
        runs_command.print_json(detail)
    else:
        print(render_show(detail))
    return 0


def promote_main(args: argparse.Namespace) -> int:
    """`kfops models promote NAME VERSION`."""
    reg = _registry(args)
    require_model(reg, args.name)
    why = approval.not_approved(reg, args.name, args.version)  # the gate records who and why
    if why is not None and args.version in approval.pending(reg, args.name):
        raise errors.ConfigError(
            f"{why}: `kfops models approve {args.name} {args.version} --by WHO --reason WHY` "
            "promotes it"
        )
    if why is not None:  # rejected
        raise errors.ConfigError(f"{why}: it is not promoted (stage a new version instead)")
    before = reg.champion(args.name)
    pointer = reg.promote(args.name, args.version)
    if args.json:
        runs_command.print_json(pointer)
    else:
        print(f"{args.name}: champion is now {args.version} (was {before or 'none'})")
    return 0


def approve_main(args: argparse.Namespace) -> int:
    """`kfops models approve NAME VERSION --by WHO --reason WHY [--allow-older]`."""
    reg = _registry(args)
    require_model(reg, args.name)
    before = reg.champion(args.name)
    entry = approval.approve(
        reg, args.name, args.version, args.by, args.reason, allow_older=args.allow_older
    )
    return _print_decision(
        args, entry, f"approved by {entry['approved_by']} ({entry['reason']}); "
        f"champion is now {args.version} (was {before or 'none'})",
    )  # fmt: skip


def reject_main(args: argparse.Namespace) -> int:
    """`kfops models reject NAME VERSION --by WHO --reason WHY`."""
    reg = _registry(args)
    require_model(reg, args.name)
    entry = approval.reject(reg, args.name, args.version, args.by, args.reason)
    return _print_decision(
        args, entry, f"rejected by {entry['rejected_by']} ({entry['reason']}); "
        "it no longer waits for approval",
    )  # fmt: skip


def _print_decision(args: argparse.Namespace, entry: dict, said: str) -> int:
    """An approval or rejection: its entry as JSON, or one line for people."""
    if args.json:
        runs_command.print_json({"name": args.name, "version": args.version, **entry})
    else:
        print(f"{args.name}: version {args.version} {said}")
    return 0


def rollback_main(args: argparse.Namespace) -> int:
    """`kfops models rollback NAME`."""
    reg = _registry(args)
    require_model(reg, args.name)
    before = reg.champion(args.name)
    version = reg.rollback(args.name)
    if args.json:
        runs_command.print_json(reg.champion_pointer(args.name))
    else:
        print(f"{args.name}: rolled back to {version} (was {before})")
    return 0


def render_show(detail: dict[str, Any]) -> str:
    """A version's manifest for people: header, files table, metadata as JSON."""
    flags = [flag for flag in ("champion", "verified") if detail[flag]]
    entry = detail.get("approval")
    if entry:
        flags.insert(0, entry["state"])
    head = f"{detail['name']} version {detail['version']}"
    head += f" ({', '.join(flags)})" if flags else ""
    if entry and entry["state"] == approval.APPROVED:
        head += f"\napproved by {entry['approved_by']} at {entry['approved_at']}: {entry['reason']}"
    elif entry and entry["state"] == approval.REJECTED:
        head += f"\nrejected by {entry['rejected_by']} at {entry['rejected_at']}: {entry['reason']}"
    elif entry:
        head += f"\nstaged at {entry['staged_at']}, waiting for `kfops models approve`"
    files = runs_command.table(
        ("FILE", "SIZE", "SHA256"),
        [
            (name, entry["size"], runs_command.short_hash(entry["sha256"]))
            for name, entry in sorted(detail["files"].items())
        ],
    )
    metadata = json.dumps(detail.get("metadata", {}), indent=2, sort_keys=True, default=str)
    return "\n".join([head, f"created {detail.get('created_at', '?')}", "", files, "", metadata])
