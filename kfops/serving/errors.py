"""Serving errors. Each carries its HTTP status; `app.error_response` alone maps them to responses.

They subclass the library's types (`kfops.errors`) so callers outside the server (infra-validate,
the CLI) treat them like any other kfops error.
"""

from __future__ import annotations

import dataclasses

from kfops import errors

MAX_ROWS_NAMED = 10


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: which field, which rule, which rows.

    Attributes:
        field: the input (feature) name, or None for problems with the request as a whole.
        rule: short machine-readable rule name (missing, unexpected, type, null, range, domain...).
        detail: what is wrong and what was expected, for a human.
        rows: 0-based row indexes that break the rule (the first few of them).
        n_rows: how many rows break it in total (may exceed len(rows)).
    """

    field: str | None
    rule: str
    detail: str
    rows: tuple[int, ...] = ()
    n_rows: int = 0

    def to_dict(self) -> dict:
        """JSON-ready form used in error bodies."""
        return {
            "field": self.field,
            "rule": self.rule,
            "detail": self.detail,
            "rows": list(self.rows),
            "n_rows": self.n_rows,
        }

    def __str__(self) -> str:
        where = f"field {self.field!r}" if self.field is not None else "request"
        rows = ""
        if self.rows:
            more = (
                f" (+{self.n_rows - len(self.rows)} more)" if self.n_rows > len(self.rows) else ""
            )
            rows = f" rows {list(self.rows)}{more}"
        return f"{where}{rows}: {self.rule}: {self.detail}"


def problem(field: str | None, rule: str, detail: str, rows=()) -> Problem:
    """Builds a Problem naming at most MAX_ROWS_NAMED rows (and counting all of them)."""
    rows = [int(r) for r in rows]
    return Problem(field, rule, detail, tuple(rows[:MAX_ROWS_NAMED]), len(rows))


class InvalidInput(errors.DataError):
    """The request breaks the model's schema or the protocol; lists every problem found."""

    http_status = 400

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        head = "; ".join(str(p) for p in self.problems[:20])
        tail = f"; ... {n - 20} more" if n > 20 else ""
        super().__init__(f"{n} problem{'s' if n != 1 else ''} with the request: {head}{tail}")


class MalformedRequest(errors.DataError):
    """The body is not valid JSON or not the protocol's shape at all."""

    http_status = 400


class UnsupportedMediaType(errors.DataError):
    """The request declares a content type other than JSON."""

    http_status = 415


class PayloadTooLarge(errors.DataError):
    """The body or the batch exceeds a configured limit; the message names the limit."""

    http_status = 413


class MethodNotAllowed(errors.DataError):
    """An inference path called with another method than POST."""

    http_status = 405
    headers = {"allow": "POST"}  # RFC 9110: a 405 names the allowed methods


class ModelRejectedInput(errors.DataError):
    """The input passed schema validation but the model refused it (e.g. an unseen category)."""

    http_status = 422


class ModelNotFound(errors.NotFound):
    """The request names a model or version this server does not serve."""

    http_status = 404


class ModelNotReady(errors.KfopsError):
    """No model is loaded yet (or loading failed); readiness probes see 503."""

    http_status = 503
