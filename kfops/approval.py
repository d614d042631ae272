"""Human approval between "blessed" and "champion": staged versions and who approved them.

With `--promote manual` (kfops.push.PushConfig) a blessed version is registered and staged, not
promoted: the champion pointer, which the server follows, does not move, so nothing serves it.
`kfops models approve NAME VERSION --by WHO --reason WHY` records the approval (who, why, when)
and then moves the champion pointer. The record is `models/<name>/staged.json`, changed only by
compare-and-swap (kfops.registry), so concurrent stagings and approvals are never lost:

    {"versions": {"4": {"state": "approved", "staged_at": ..., "run_id": ...,
                        "approved_by": ..., "reason": ..., "approved_at": ...}}}

The approval is written before the pointer moves: a crash between the two leaves an approved
version that is not champion, which `approve` names with the command that finishes the job.

Approving a version older than the champion (staged v4, then v5 became champion by a rollout or
`kfops models promote`) would move the champion back; `approve` refuses that unless told
`allow_older`, and then records the champion it replaced as "moved_back_from".

A staged version nobody will approve (a newer champion overtook it) is closed by
`kfops models reject NAME VERSION --by WHO --reason WHY`: its entry records who, why and when
("rejected_by", "reason", "rejected_at"), it leaves the waiting list, and it can no longer be
approved. The champion pointer is not touched.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from kfops import errors, registry

STAGED, APPROVED, REJECTED = "staged", "approved", "rejected"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def stage(reg: registry.Registry, name: str, version: str, facts: Mapping[str, Any]) -> dict:
    """Marks a registered version as staged for approval; returns its entry.

    Raises:
        NotFound: no such registered version.
    """
    reg.manifest(name, version)  # NotFound names the versions there are

    def change(current: dict | None) -> dict | None:
        versions = dict((current or {}).get("versions", {}))
        if version in versions:
            return None  # a retried push step staging its own version again
        versions[version] = {"state": STAGED, "staged_at": _now(), **dict(facts)}
        return {**(current or {}), "versions": versions}

    return reg.swap_document(name, registry.STAGED_FILE, change)["versions"][version]


def entries(reg: registry.Registry, name: str) -> dict[str, dict]:
    """Version -> its staging entry (staged, approved or rejected), for every version staged."""
    return dict((reg.document(name, registry.STAGED_FILE) or {}).get("versions", {}))


def pending(reg: registry.Registry, name: str) -> list[str]:
    """Versions staged and neither approved nor rejected yet, oldest first."""
    return sorted((v for v, e in entries(reg, name).items() if e["state"] == STAGED), key=int)


def not_approved(reg: registry.Registry, name: str, version: str) -> str | None:
    """Why `version` must not be served as if approved (staged and waiting, or rejected), or None.

    For the commands that could serve it without `approve`: `kfops models promote`, `kfops deploy
    --version`. A version never staged (`--promote auto`) or approved is None.
    """
    entry = entries(reg, name).get(version)
    if entry is None or entry["state"] == APPROVED:
        return None
    if entry["state"] == REJECTED:
        return _closed(name, version, entry)
    return f"model {name!r} version {version} is staged for approval"


def _closed(name: str, version: str, entry: dict) -> str:
    """Why a staged entry that is not waiting any more cannot be approved or rejected again."""
    if entry["state"] == REJECTED:
        return (
            f"model {name!r} version {version} was rejected by {entry['rejected_by']} "
            f"at {entry['rejected_at']} ({entry['reason']})"
        )
    return (
        f"model {name!r} version {version} was already approved by "
        f"{entry['approved_by']} at {entry['approved_at']}"
    )


def _who_and_why(by: str, reason: str, verb: str, noun: str) -> tuple[str, str]:
    by, reason = (by or "").strip(), (reason or "").strip()
    if not by or not reason:
        raise errors.ConfigError(f"{noun} needs who {verb} (--by) and why (--reason)")
    return by, reason


def _decide(
    reg: registry.Registry, name: str, version: str,
    refuse: Callable[[dict], str], decide: Callable[[dict], dict],
) -> dict:  # fmt: skip
    """Replaces a waiting version's entry with `decide(entry)` by compare-and-swap; returns it.

    A version never staged is refused naming the waiting ones; one no longer waiting (approved or
    rejected) with `refuse(entry)`. `decide` may raise to refuse too.
    """
    reg.manifest(name, version)  # NotFound names the versions there are

    def change(current: dict | None) -> dict:
        versions = dict((current or {}).get("versions", {}))
        entry = versions.get(version)
        if entry is None:
            waiting = ", ".join(pending(reg, name)) or "none"
            raise errors.ConfigError(
                f"model {name!r} version {version} is not staged for approval "
                f"(staged versions: {waiting})"
            )
        if entry["state"] != STAGED:
            raise errors.ConfigError(refuse(entry))
        versions[version] = decide(entry)
        return {**(current or {}), "versions": versions}

    return reg.swap_document(name, registry.STAGED_FILE, change)["versions"][version]


def reject(reg: registry.Registry, name: str, version: str, by: str, reason: str) -> dict:
    """Records who rejected a staged version and why; it leaves `pending` for good.

    The champion pointer is not touched. Returns the version's entry, with rejected_by, reason
    and rejected_at.

    Raises:
        ConfigError: `by` or `reason` is empty, or the version is not waiting for approval (never
            staged, already approved or already rejected: the message says by whom and when).
        NotFound: no such registered version.
    """
    by, reason = _who_and_why(by, reason, "rejects", "a rejection")
    return _decide(
        reg, name, version, lambda entry: _closed(name, version, entry),
        lambda entry: {
            **entry, "state": REJECTED, "rejected_by": by, "reason": reason, "rejected_at": _now(),
        },
    )  # fmt: skip


def approve(
    reg: registry.Registry, name: str, version: str, by: str, reason: str,
    allow_older: bool = False,
) -> dict:  # fmt: skip
    """Records who approved a staged version and why, then makes it the champion.

    "Older" is the registry's own order: versions are integers, numbered upwards as they are
    registered (Registry.versions lists them by number, oldest first), so a version is older than
    the champion when its number is lower. Registration times are not compared: they come from
    each pusher's clock, and an explicit version number is the registry's order, not its time.
    With `allow_older` such a version is approved and the champion moves back to it; its entry
    then records the champion it replaced as moved_back_from.

    Returns:
        The version's entry, with approved_by, reason and approved_at.

    Raises:
        ConfigError: `by` or `reason` is empty, the version is not waiting for approval (never
            staged, already approved or rejected: the message says by whom and when), or it is
            older than the champion and `allow_older` is not set (nothing is recorded or moved).
        NotFound: no such registered version.
    """
    by, reason = _who_and_why(by, reason, "approves", "an approval")

    def refuse(entry: dict) -> str:
        if entry["state"] == REJECTED:
            return f"{_closed(name, version, entry)}: it cannot be approved"
        champion = reg.champion(name)
        hint = "" if champion == version else (
            f"; the champion is {champion}: `kfops models promote {name} {version}` serves it"
        )  # fmt: skip
        return f"{_closed(name, version, entry)}{hint}"

    def decide(entry: dict) -> dict:
        champion = reg.champion(name)
        older = champion is not None and int(version) < int(champion)
        if older and not allow_older:
            raise errors.ConfigError(
                f"model {name!r} version {version} is older than the champion {champion}: "
                f"approving it would move the champion back; add --allow-older to do that"
            )
        return {
            **entry, "state": APPROVED, "approved_by": by, "reason": reason,
            "approved_at": _now(), **({"moved_back_from": champion} if older else {}),
        }  # fmt: skip

    entry = _decide(reg, name, version, refuse, decide)
    reg.promote(name, version)
    return entry
