"""The data schema: a human-readable JSON contract shared by validate, train, serving and monitor.

A schema lists each column with a logical type (`int`, `float`, `bool`, `string`, `datetime`),
nullability, observed range or categorical domain, and a role (`feature`, `label`, `time`,
`group`, `id`, `ignore`). Only `feature` columns go into the model; serving validates requests
against exactly those.

Example JSON:
    {"version": 1, "label": "churned", "task": "classification", "label_classes": [0, 1],
     "columns": [{"name": "tenure", "dtype": "int", "role": "feature", "nullable": false,
                  "max_null_fraction": 0.0, "min": 0, "max": 72, "domain": null}, ...]}
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from kfops import errors, parameters

SCHEMA_VERSION = 1
DTYPES = ("int", "float", "bool", "string", "datetime")
ROLES = ("feature", "label", "time", "group", "id", "ignore")
TASKS = ("classification", "regression")


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    """What one column may hold."""

    name: str
    dtype: str
    role: str = "feature"
    nullable: bool = True
    max_null_fraction: float = 1.0
    min: float | None = None
    max: float | None = None
    domain: tuple[str, ...] | None = None

    def __post_init__(self):
        errors.check_choice(f"column {self.name!r}: dtype", self.dtype, DTYPES)
        errors.check_choice(f"column {self.name!r}: role", self.role, ROLES)
        if self.domain is not None and not isinstance(self.domain, tuple):
            object.__setattr__(self, "domain", tuple(self.domain))


@dataclasses.dataclass(frozen=True)
class Schema:
    """Columns in order, plus the label and task when the data is for supervised learning."""

    columns: tuple[ColumnSpec, ...]
    label: str | None = None
    task: str | None = None
    label_classes: tuple[Any, ...] | None = None

    def __post_init__(self):
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise errors.ConfigError(f"schema lists columns more than once: {dupes}")
        if self.label is not None and self.label not in names:
            raise errors.ConfigError(f"schema label {self.label!r} is not one of its columns")
        if self.task is not None:
            errors.check_choice("task", self.task, TASKS)

    @property
    def names(self) -> list[str]:
        """All column names, in order."""
        return [c.name for c in self.columns]

    @property
    def features(self) -> list[ColumnSpec]:
        """The columns the model consumes, in order."""
        return [c for c in self.columns if c.role == "feature"]

    @property
    def feature_names(self) -> list[str]:
        """Names of the model's input columns, in order."""
        return [c.name for c in self.features]

    def column(self, name: str) -> ColumnSpec:
        """The spec of one column.

        Raises:
            KeyError: no such column.
        """
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "version": SCHEMA_VERSION,
            "label": self.label,
            "task": self.task,
            "label_classes": list(self.label_classes) if self.label_classes is not None else None,
            "columns": [
                {
                    **dataclasses.asdict(c),
                    "domain": list(c.domain) if c.domain is not None else None,
                }
                for c in self.columns
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        """Builds a schema from `to_dict` output.

        Raises:
            ConfigError: the dict is not a kfops schema.
        """
        try:
            if data.get("version") != SCHEMA_VERSION:
                raise errors.ConfigError(f"unsupported schema version {data.get('version')!r}")
            cols = tuple(ColumnSpec(**c) for c in data["columns"])
            classes = data.get("label_classes")
            return cls(
                cols,
                data.get("label"),
                data.get("task"),
                tuple(classes) if classes is not None else None,
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise errors.ConfigError(f"not a kfops schema: {e}") from e

    def save(self, path: str | os.PathLike) -> None:
        """Writes the schema as indented JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Schema:
        """Reads a schema JSON file.

        Raises:
            ConfigError: unreadable or not a schema.
        """
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as e:
            raise errors.ConfigError(f"cannot read schema {path}: {e}") from e


def dtype_of(series: pd.Series) -> str:
    """The logical type of a pandas column (object columns of text count as `string`)."""
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "string"


def load_uri(uri: str, store_settings: Any = None) -> Schema:
    """Loads a schema from a local path or an `s3://bucket/key.json` object.

    Raises:
        ConfigError: unreadable or not a schema.
        StorageError: the object store cannot be read.
    """
    if not uri.startswith("s3://"):
        return Schema.load(uri)
    from kfops import store  # noqa: PLC0415 (keeps minio off the import path of plain schema use)

    bucket, _, key = uri[len("s3://") :].partition("/")
    raw = store.open_store(f"s3://{bucket}", store_settings).get_bytes(key)
    try:
        return Schema.from_dict(json.loads(raw))
    except json.JSONDecodeError as e:
        raise errors.ConfigError(f"schema {uri} is not JSON: {e}") from e


# `--type COL=KIND`: the user's word for a column's kind -> the logical dtype the data is cast to.
COLUMN_KINDS = {"categorical": "string", "numeric": "float", "datetime": "datetime"}
# The `kfops run` flag of each ColumnConfig field, for messages (kfops.commands.run registers them).
COLUMN_FLAGS = {"drop_columns": "--drop", "ignore_columns": "--ignore", "id_columns": "--id",
                "column_types": "--type"}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ColumnConfig:
    """Columns the user removes, keeps out of the model or retypes (`--drop/--ignore/--id/--type`).

    Pipeline parameters, not CLI-only behaviour: ingest casts (every later step sees the types
    the user declared); validate drops (before inference and every check) and gives ignore and
    id their roles, so a dropped column never reaches the schema, hence never the model.
    """

    drop_columns: tuple[str, ...] = parameters.field(
        (), "columns removed before validation and never in the schema (a constant or leaky one)"
    )
    ignore_columns: tuple[str, ...] = parameters.field(
        (), "columns kept in the data (for slices, ids) but never model features"
    )
    id_columns: tuple[str, ...] = parameters.field(
        (), "row keys: never features; recorded in the schema with role 'id'"
    )
    column_types: dict[str, str] = parameters.field(
        {}, "column -> categorical, numeric or datetime: overrides the inferred type"
    )

    def __post_init__(self):
        owner: dict[str, str] = {}
        for name in ("drop_columns", "ignore_columns", "id_columns"):
            flag, value = COLUMN_FLAGS[name], getattr(self, name)
            if isinstance(value, str):
                raise errors.ConfigError(f"{name} must be a list of column names, not one string")
            object.__setattr__(self, name, tuple(value))
            for column in value:
                if owner.setdefault(column, flag) != flag:
                    raise errors.ConfigError(
                        f"column {column!r} is given to both {owner[column]} and {flag}; pick one"
                    )
        object.__setattr__(self, "column_types", dict(self.column_types))
        for column, kind in self.column_types.items():
            errors.check_choice(f"--type {column}", kind, tuple(COLUMN_KINDS))
            if column in self.drop_columns:
                raise errors.ConfigError(f"column {column!r} is given to both --drop and --type")

    def check_uses(self, **uses: Any) -> None:
        """A dropped column cannot be used (label, slice, ...); an ignored or id one not as label.

        Args:
            uses: flag name (`label`, `slice`, ...) -> a column name or a list of them.

        Raises:
            ConfigError: one line naming the column and both uses.
        """
        for use, value in uses.items():
            names = [value] if isinstance(value, str) else list(value or ())
            for column in names:
                flag = f"--{use}" if use in ("label", "slice", "sensitive") else use
                if column and column in self.drop_columns:
                    raise errors.ConfigError(
                        f"column {column!r} is dropped (--drop) but also used as {flag}; keep it "
                        f"(--ignore {column} keeps it out of the model) or choose another {flag}"
                    )
                both = self.ignore_columns + self.id_columns
                if use == "label" and column in both:
                    which = "--ignore" if column in self.ignore_columns else "--id"
                    raise errors.ConfigError(
                        f"column {column!r} is the label and also given to {which}; pick one"
                    )

    def check_known(self, columns: Any, which: tuple[str, ...]) -> None:
        """Every column named in the `which` fields is in the data.

        Raises:
            ConfigError: one line naming the flag, the column and the close names.
        """
        present = [str(c) for c in columns]
        for name in which:
            for column in getattr(self, name):
                if column not in present:
                    flag = COLUMN_FLAGS[name]
                    close = difflib.get_close_matches(column, present, n=3, cutoff=0.5)
                    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
                    raise errors.ConfigError(
                        f"{flag} {column!r}: no such column; {hint}"
                        f"the data has {errors.preview(present, limit=8)}"
                    )

    def drop(self, df: pd.DataFrame) -> pd.DataFrame:
        """The frame without the dropped columns (validate's first act: nothing judges them).

        Ingest keeps them, so the data snapshot a version records is the source as read, and a
        retraining run on that snapshot drops them again.

        Raises:
            ConfigError: a dropped column the data does not have (named, with the close names).
        """
        self.check_known(df.columns, ("drop_columns",))
        return df.drop(columns=list(self.drop_columns)) if self.drop_columns else df

    def cast(self, df: pd.DataFrame) -> pd.DataFrame:
        """The frame with the retyped columns cast (ingest: every later step sees these types).

        Casting is idempotent, so a snapshot of cast data casts to itself when retrained on.

        Raises:
            ConfigError: an unknown column, or values a `--type` cannot hold (named, first few).
        """
        self.check_known(df.columns, ("column_types",))
        if not self.column_types:
            return df
        out = df.copy()
        for column, kind in self.column_types.items():
            out[column] = _cast(out[column], kind)
        return out

    def check_held(self, held: Schema, source: str, task: str | None) -> None:
        """Flags that contradict a schema the data is held to (`schema_uri`, or the champion's).

        A held schema is the contract: `--task`, `--ignore`, `--id` and `--type` may restate it
        but not change it; a change goes through `kfops schema accept`.

        Raises:
            ConfigError: one line naming the flag, the column and what the schema says.
        """
        if task and held.task and task != held.task:
            raise errors.ConfigError(
                f"--task {task} conflicts with the schema from {source}, which says {held.task}; "
                f"drop --task or use a schema for {task}"
            )
        wanted = {c: "ignore" for c in self.ignore_columns} | {c: "id" for c in self.id_columns}
        for column, role in wanted.items():
            spec = _spec_or_none(held, column)
            if spec is not None and spec.role != role:
                raise errors.ConfigError(
                    f"--{role} {column}: the schema from {source} has it as role {spec.role!r}; "
                    "change the schema (kfops schema accept) or leave the flag out"
                )
        for column, kind in self.column_types.items():
            spec = _spec_or_none(held, column)
            fits = (
                spec is None
                or spec.dtype == COLUMN_KINDS[kind]
                or (kind == "numeric" and spec.dtype == "int")
            )
            if not fits:
                raise errors.ConfigError(
                    f"--type {column}={kind}: the schema from {source} has it as {spec.dtype}; "
                    "change the schema (kfops schema accept) or leave the flag out"
                )


def _spec_or_none(held: Schema, column: str) -> ColumnSpec | None:
    try:
        return held.column(column)
    except KeyError:
        return None


def _cast(series: pd.Series, kind: str) -> pd.Series:
    """One column as `kind`; a value that cannot be that kind is named, never silently null."""
    present = series.notna()
    if kind == "categorical":
        return series.map(_as_text, na_action="ignore").astype(object)
    if kind == "numeric":
        out = pd.to_numeric(series, errors="coerce")
    else:
        try:
            out = pd.to_datetime(series, errors="coerce", format="mixed")
        except (ValueError, TypeError) as e:  # e.g. mixed time zones
            raise errors.ConfigError(f"--type {series.name}=datetime: {e}") from e
    bad = series[present & out.isna()]
    if len(bad):
        raise errors.ConfigError(
            f"--type {series.name}={kind}: {len(bad)} of {int(present.sum())} values are not "
            f"{'numbers' if kind == 'numeric' else 'dates'}, e.g. {errors.preview(bad.unique())}"
        )
    return out.astype(float) if kind == "numeric" else out


def _as_text(value: Any) -> str:
    """A category's text: 3.0 read from a CSV with gaps is the category "3", as in the file."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
