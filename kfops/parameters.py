"""One parameter surface per stage, owned by the stage's config dataclass.

A config field that a user can set from a pipeline, a component or the CLI is declared with
`parameters.field(default, help, ...)`: name, type, default, help and allowed values live there
and nowhere else. Component and pipeline signatures are literal Python (KFP reads them), so
tests/test_parameter_surface.py walks every component, pipeline and CLI command and fails on any
name, type or default that differs from the dataclass; CLI flags are made from the surface with
`add_flag`; component bodies build configs by keyword with `build`.

KFP signatures cannot carry None (a rule turned off, "infer it"), so each optional field names
the value that stands for None on the KFP side and the CLI: `none_as` (e.g. "" for "infer",
RULE_OFF for "no rule"). `build` turns it back into None.

No kfp import: the library layer stays usable without KFP.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from kfops import errors

RULE_OFF = -1.0  # stands for "no rule" where a KFP signature cannot carry None
_UNSET = object()
_KEY = "kfops.parameter"
_TYPES = (str, int, float, bool, list, dict)


@dataclasses.dataclass(frozen=True)
class Param:
    """One user-settable parameter, in the form KFP signatures and the CLI carry it.

    Attributes:
        name: the config field's name.
        type: str, int, float, bool, list or dict (what a KFP parameter can be).
        default: the carriable default (never None); `REQUIRED` when the field has none.
        help: one line for flags and docs.
        choices: allowed values, or () for any.
        none_as: the carriable value that means None in the config, or None when the field
            is never None.
    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] = ()
    none_as: Any = None

    @property
    def required(self) -> bool:
        """The field has no default: a pipeline may give it one, the CLI computes it."""
        return self.default is REQUIRED


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


def field(
    default: Any = _UNSET,
    help: str = "",  # noqa: A002 (argparse's word)
    *,
    choices: Sequence[Any] = (),
    none_as: Any = _UNSET,
) -> Any:
    """A dataclass field that is also a user-settable parameter.

    Example:
        seed: int = parameters.field(0, "seeds the split")
    """
    meta = {_KEY: {"help": help, "choices": tuple(choices), "none_as": none_as}}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    if default is _UNSET:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def surface(cls: type) -> dict[str, Param]:
    """The parameters of a config dataclass, in field order."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Param] = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_KEY)
        if meta is None:
            continue
        kind = _carriable(hints[f.name], f.name, cls)
        none_as = None if meta["none_as"] is _UNSET else meta["none_as"]
        if f.default is not dataclasses.MISSING:
            default = none_as if f.default is None else f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = REQUIRED
        if isinstance(default, tuple):
            default = list(default)
        out[f.name] = Param(f.name, kind, default, meta["help"], meta["choices"], none_as)
    return out


def build(cls: type, /, **values: Any) -> Any:
    """The config from carriable values, by keyword: `none_as` values become None.

    Raises:
        ConfigError: a name the config does not have, or a value of the wrong type.
    """
    params = surface(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise errors.ConfigError(f"{cls.__name__} has no parameter {unknown[0]!r}")
    kwargs = {}
    for name, value in values.items():
        param = params.get(name)
        if param is not None:
            value = coerce(param, value)
            if param.none_as is not None and value == param.none_as:
                value = None
            elif isinstance(value, list) and param.type is list:
                value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def coerce(param: Param, value: Any, what: str = "") -> Any:
    """The value as the parameter's type (an int is a float; JSON text for list/dict is parsed).

    Raises:
        ConfigError: one line naming the parameter, the expected type and the value.
    """
    what = what or param.name
    if param.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if param.type in (list, dict) and isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
    if isinstance(value, tuple) and param.type is list:
        value = list(value)
    ok = isinstance(value, param.type) and not (param.type is int and isinstance(value, bool))
    if not ok:
        raise errors.ConfigError(f"{what} must be {param.type.__name__}, got {value!r}")
    if param.choices and value not in param.choices and value != param.none_as:
        errors.check_choice(what, value, param.choices)
    return value


def check_arguments(known: Mapping[str, Param], arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments checked against a pipeline's parameters: known names, right types.

    Raises:
        ConfigError: an unknown name (the message lists the known ones) or a wrong type.
    """
    out = {}
    for key, value in arguments.items():
        if key not in known:
            raise errors.ConfigError(f"unknown parameter {key!r}; {_suggest(key, known)}")
        out[key] = coerce(known[key], value)
    return out


def add_flag(
    parser: argparse.ArgumentParser, flag: str, param: Param, *, dest: str | None = None, **kw: Any
) -> argparse.Action:
    """An argparse flag made from the surface: type, default, choices and help.

    A bool becomes `--x/--no-x`; a list becomes a repeatable flag. `kw` overrides (for a flag
    whose default the command computes, pass default=None and say so in help).
    """
    options: dict[str, Any] = {"dest": dest or param.name, "help": param.help}
    if param.type is bool:
        options["action"] = argparse.BooleanOptionalAction
    elif param.type is list:
        options["action"] = "append"
    else:
        options["type"] = param.type
        if param.choices:
            options["choices"] = [c for c in param.choices]
    if not param.required:
        options["default"] = None if param.type is list else param.default
    options.update(kw)
    return parser.add_argument(flag, **options)


def add_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One `--field-name` flag per surface entry of `cls` (see `add_flag`)."""
    for name, param in surface(cls).items():
        add_flag(parser, f"--{name.replace('_', '-')}", param)


def from_args(cls: type, args: argparse.Namespace) -> Any:
    """The config `cls` built by keyword from the flags `add_flags` declared."""
    return build(cls, **{name: getattr(args, name) for name in surface(cls)})


def pipeline_parameters(signature_params: Mapping[str, Any]) -> dict[str, Param]:
    """Params of a pipeline function from its `inspect.signature(...).parameters`."""
    out = {}
    for name, p in signature_params.items():
        kind = _carriable(p.annotation, name, "pipeline")
        default = REQUIRED if p.default is p.empty else p.default
        out[name] = Param(name, kind, default, "")
    return out


def _carriable(annotation: Any, name: str, owner: Any) -> type:
    """The KFP-carriable type: Optional stripped, tuples and Mappings as list and dict."""
    if isinstance(annotation, str):
        annotation = {"str": str, "int": int, "float": float, "bool": bool}.get(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    origin = typing.get_origin(annotation) or annotation
    for base in _TYPES:
        if origin is base:
            return base
    if origin in (tuple, Sequence, typing.Sequence):
        return list
    if origin in (Mapping, typing.Mapping):
        return dict
    raise TypeError(f"{owner}.{name}: {annotation!r} is not a type KFP parameters can carry")


def _suggest(key: str, known: Mapping[str, Any]) -> str:
    """Close names first (`delimiter` -> `source_delimiter`), else a bounded list of all."""
    close = [k for k in sorted(known) if key in k or k.endswith(key)]
    close = close or difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(close) + "?"
    return f"known: {errors.preview(sorted(known), limit=12)}"
