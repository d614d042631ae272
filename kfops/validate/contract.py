"""The schema a model's data is held to: the champion's, or one a person accepted after review.

TFX's pattern (SchemaGen once, the schema curated, then every batch checked against it by
ExampleValidator): the first run of a model infers its schema; the schema travels with every
registered version (`models/<name>/<version>/schema.json`); later runs validate against the
champion's. An intended change of the data is never a silent re-inference: `propose` widens the
current schema by a new batch, `diff` shows what changes, and `accept` records the result with
who, why and when. Layout in the store (docs/CONTRACTS.md):

    models/<name>/schema/accepted-<n>.json   {"schema": Schema.to_dict(), "accepted": {...}}
    models/<name>/schema/accepted.json       pointer to the newest: {"number", "file", "sha256",
                                             "base_version", "by", "reason", "at"}

An accepted schema applies while the champion is the version it was accepted against (or an
older one after a rollback, or none). The next model trained under it is registered with it, so
once that model is champion its own schema.json (the accepted one) takes over.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from kfops import dataio, errors, registry, schema
from kfops.store import base
from kfops.validate import infer

SCHEMA_DIR = "schema"
POINTER_FILE = "accepted.json"
MAX_ATTEMPTS = 50


@dataclasses.dataclass(frozen=True)
class Resolved:
    """The schema the next batch is checked against, and where it came from.

    Attributes:
        schema: None when the model has no champion and no accepted schema: infer one.
        source: "inferred", "champion v<N>" or "accepted #<n>", for records and messages.
        record: the acceptance record (by, reason, at, base_version) for an accepted schema.
    """

    schema: schema.Schema | None
    source: str
    record: dict[str, Any] | None = None


def resolve(store: base.Store, name: str) -> Resolved:
    """The schema a batch for model `name` must meet: accepted, else the champion's, else none.

    Raises:
        IntegrityError: the champion's schema.json or an accepted schema does not match its
            recorded sha256.
        ConfigError: a bad model name.
    """
    reg = registry.Registry(store)
    champion = reg.champion(name)
    pointer = _pointer(store, name)
    if pointer is not None and _applies(pointer, champion):
        return Resolved(
            _load_accepted(store, name, pointer), f"accepted #{pointer['number']}", pointer
        )
    if champion is None:
        return Resolved(None, "inferred")
    with tempfile.TemporaryDirectory(prefix="kfops-schema-") as tmp:
        reg.fetch(name, champion, tmp, files=[registry.SCHEMA_FILE])  # sha256 verified
        return Resolved(
            schema.Schema.load(Path(tmp, registry.SCHEMA_FILE)), f"champion v{champion}"
        )


def _applies(pointer: dict[str, Any], champion: str | None) -> bool:
    base_version = pointer.get("base_version")
    if champion is None:
        return True
    return base_version is not None and int(champion) <= int(base_version)


def accept(
    store: base.Store,
    name: str,
    proposed: schema.Schema,
    *,
    by: str,
    reason: str,
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """Records `proposed` as model `name`'s schema from now on; returns the new pointer.

    The file is written create-only under the next free number and the pointer moved by
    compare-and-swap, so two people accepting at once both get recorded, one after the other.

    Raises:
        ConfigError: no reason or no name of who accepts.
    """
    if not reason.strip():
        raise errors.ConfigError("schema accept needs --reason: why the data changed on purpose")
    if not by.strip():
        raise errors.ConfigError("schema accept needs --by: who reviewed the change")
    reg = registry.Registry(store)
    champion = reg.champion(name)
    at = (now or datetime.datetime.now(datetime.UTC)).isoformat(timespec="seconds")
    record = {"by": by, "reason": reason, "at": at, "base_version": champion}
    for _ in range(MAX_ATTEMPTS):
        number = _next_number(store, name)
        fname = f"accepted-{number}.json"
        body = _json({"schema": proposed.to_dict(), "accepted": record})
        try:
            store.put_bytes_if(_key(name, fname), body, None)
        except base.PreconditionFailed:
            continue  # another acceptance took this number: take the next one
        pointer = {"number": number, "file": fname, "sha256": dataio.sha256_bytes(body), **record}
        _move_pointer(store, name, pointer)
        return pointer
    raise errors.StorageError(f"could not record an accepted schema for {name!r}")


def history(store: base.Store, name: str) -> list[dict[str, Any]]:
    """Every accepted schema's record (number, file, by, reason, at, base_version), oldest first."""
    out = []
    for number in sorted(_numbers(store, name)):
        data = json.loads(store.get_bytes(_key(name, f"accepted-{number}.json")))
        out.append({"number": number, "file": f"accepted-{number}.json", **data["accepted"]})
    return out


def propose(current: schema.Schema, df: pd.DataFrame) -> schema.Schema:
    """The current schema widened by a batch: what accepting this batch would make the contract.

    Columns keep their roles; the label and task stay. Ranges become the union of both, domains
    the union (or none when the batch has too many values for one), null limits the larger; a
    column the batch lacks is dropped, a new one added as inferred; a changed type takes the
    batch's. Label classes become the union.
    """
    roles = {c.name: c.role for c in current.columns if c.name in df.columns}
    fresh = infer.infer_schema(
        df,
        current.label if current.label in df.columns else None,
        task=current.task,
        time_column=_named(roles, "time"),
        group_column=_named(roles, "group"),
        id_columns=[n for n, r in roles.items() if r == "id"],
    )
    by_name = {c.name: c for c in current.columns}
    columns = tuple(_merge(by_name.get(c.name), c) for c in fresh.columns)
    classes = current.label_classes
    if fresh.label_classes is not None:
        classes = tuple(sorted({*(classes or ()), *fresh.label_classes}, key=str))
    label = current.label if current.label in df.columns else None
    return schema.Schema(
        columns, label, current.task if label else None, classes if label else None
    )


def _named(roles: dict[str, str], role: str) -> str | None:
    return next((n for n, r in roles.items() if r == role), None)


def _merge(old: schema.ColumnSpec | None, new: schema.ColumnSpec) -> schema.ColumnSpec:
    if old is None:
        return new
    if old.dtype != new.dtype and not (old.dtype == "float" and new.dtype in ("int", "bool")):
        return dataclasses.replace(new, role=old.role)
    domain = None
    if old.domain is not None and new.domain is not None:
        domain = tuple(sorted({*old.domain, *new.domain}))
    return dataclasses.replace(
        old,
        nullable=old.nullable or new.nullable,
        max_null_fraction=max(old.max_null_fraction, new.max_null_fraction),
        min=_extreme(min, old.min, new.min),
        max=_extreme(max, old.max, new.max),
        domain=domain,
    )


def _extreme(pick, a, b):
    known = [v for v in (a, b) if v is not None]
    return pick(known) if known else None


def diff(current: schema.Schema, proposed: schema.Schema) -> list[dict[str, Any]]:
    """Every change from `current` to `proposed`: column, what changes, before and after."""
    changes: list[dict[str, Any]] = []
    old = {c.name: c for c in current.columns}
    new = {c.name: c for c in proposed.columns}
    for name in old.keys() - new.keys():
        changes.append(_change(name, "removed", old[name].dtype, None))
    for name in new.keys() - old.keys():
        changes.append(_change(name, "added", None, new[name].dtype))
    for name in old.keys() & new.keys():
        a, b = old[name], new[name]
        for field in ("dtype", "role", "nullable"):
            if getattr(a, field) != getattr(b, field):
                changes.append(_change(name, field, getattr(a, field), getattr(b, field)))
        if (a.min, a.max) != (b.min, b.max):
            changes.append(_change(name, "range", [a.min, a.max], [b.min, b.max]))
        if a.domain != b.domain:
            before, after = set(a.domain or ()), set(b.domain or ())
            changes.append(
                {
                    **_change(
                        name, "domain", a.domain and list(a.domain), b.domain and list(b.domain)
                    ),
                    "added": sorted(after - before),
                    "removed": sorted(before - after),
                }
            )
    if current.label_classes != proposed.label_classes:
        before = current.label_classes and list(current.label_classes)
        after = proposed.label_classes and list(proposed.label_classes)
        changes.append(_change(current.label or "*", "label_classes", before, after))
    order = {n: i for i, n in enumerate([*old, *(n for n in new if n not in old)])}
    return sorted(changes, key=lambda c: (order.get(c["column"], -1), c["change"]))


def _change(column: str, change: str, before: Any, after: Any) -> dict[str, Any]:
    return {"column": column, "change": change, "before": before, "after": after}


def _key(name: str, fname: str) -> str:
    return f"{registry.ROOT}/{name}/{SCHEMA_DIR}/{fname}"


def _pointer(store: base.Store, name: str) -> dict[str, Any] | None:
    try:
        return json.loads(store.get_bytes(_key(name, POINTER_FILE)))
    except errors.NotFound:
        return None


def _load_accepted(store: base.Store, name: str, pointer: dict[str, Any]) -> schema.Schema:
    raw = store.get_bytes(_key(name, pointer["file"]))
    if dataio.sha256_bytes(raw) != pointer["sha256"]:
        raise errors.IntegrityError(
            f"{_key(name, pointer['file'])} does not match the sha256 in {POINTER_FILE}"
        )
    return schema.Schema.from_dict(json.loads(raw)["schema"])


def _numbers(store: base.Store, name: str) -> list[int]:
    prefix = _key(name, "accepted-")
    out = []
    for key in store.list(prefix):
        stem = key[len(prefix) :].removesuffix(".json")
        if stem.isdigit():
            out.append(int(stem))
    return out


def _next_number(store: base.Store, name: str) -> int:
    return max(_numbers(store, name), default=0) + 1


def _move_pointer(store: base.Store, name: str, pointer: dict[str, Any]) -> None:
    key = _key(name, POINTER_FILE)
    for _ in range(MAX_ATTEMPTS):
        try:
            current, tag = store.get_bytes_tagged(key)
        except errors.NotFound:
            current, tag = None, None
        if current is not None and json.loads(current)["number"] > pointer["number"]:
            return  # a later acceptance already moved it on
        try:
            store.put_bytes_if(key, _json(pointer), tag)
            return
        except base.PreconditionFailed:
            continue
    raise errors.StorageError(f"could not move {key}: too many concurrent writers")


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8")
