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
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from kfops import errors

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
