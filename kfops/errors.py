"""Typed errors. Each says what is wrong and, where it can, how to fix it.

The CLI maps them to exit codes and the server maps them to HTTP status codes, each in one place;
nothing in between catches and re-wraps them.
"""

from __future__ import annotations


class KfopsError(Exception):
    """Base class of every error kfops raises on purpose."""

    exit_code = 1
    http_status = 500


class ConfigError(KfopsError):
    """A setting or parameter is invalid (bad URI, unknown option, impossible value)."""

    exit_code = 2
    http_status = 400


def check_choice(what: str, value, allowed) -> None:
    """Raises ConfigError naming `what`, the value and the allowed ones unless value is allowed.

    A set or mapping of allowed values is shown sorted; a tuple or list as it is.
    """
    if value not in allowed:
        shown = sorted(allowed) if isinstance(allowed, set | frozenset | dict) else allowed
        raise ConfigError(f"{what} must be one of {shown}, got {value!r}")


MAX_SEED = 2**32 - 1  # numpy's RandomState (and so scikit-learn and pandas' sample) takes no more


def check_seed(what: str, value) -> None:
    """Raises ConfigError unless value is an int numpy can seed with: 0 ... 2**32 - 1.

    Out of that range numpy raises a bare ValueError deep in a step, a traceback for a typo.
    """
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{what} must be an integer in [0, {MAX_SEED}], got {value!r}")


def preview(values, limit: int = 5) -> str:
    """The first `limit` values and how many more: an error line stays short on 100k values."""
    values = list(values)
    shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values[:limit])
    more = len(values) - limit
    return f"[{shown}{f', ... +{more} more' if more > 0 else ''}]"


class DataError(KfopsError):
    """Input data cannot be read or parsed (empty file, bad encoding, wrong delimiter...)."""

    exit_code = 3
    http_status = 400


class SchemaViolation(DataError):
    """A column breaks a rule: names the column, the rule and the offending values."""

    def __init__(self, column: str, rule: str, detail: str):
        super().__init__(f"column {column!r} violates {rule}: {detail}")
        self.column, self.rule, self.detail = column, rule, detail


class ValidationFailed(DataError):
    """One or more blocking anomalies; the message lists every one, not just the first."""

    def __init__(self, violations: list[SchemaViolation]):
        lines = "; ".join(str(v) for v in violations)
        super().__init__(
            f"{len(violations)} blocking anomal{'y' if len(violations) == 1 else 'ies'}: {lines}"
        )
        self.violations = list(violations)


class StorageError(KfopsError):
    """Object storage or the local store failed (unreachable endpoint, bad credentials...)."""

    exit_code = 4
    http_status = 503


class NotFound(StorageError):
    """A key, model, version or run does not exist."""

    http_status = 404


class AlreadyExists(StorageError):
    """Refused to overwrite something immutable (a registered model version)."""

    http_status = 409


class IntegrityError(KfopsError):
    """Stored content does not match its recorded sha256: tampered or truncated."""

    exit_code = 5
    http_status = 500


class ModelError(KfopsError):
    """A model cannot be trained, loaded or used for prediction."""

    exit_code = 6
    http_status = 500


class PipelineFailed(KfopsError):
    """A pipeline step failed; names the step and carries its error message."""

    exit_code = 7

    def __init__(self, step: str, message: str):
        super().__init__(f"step {step!r} failed: {message}")
        self.step, self.message = step, message
