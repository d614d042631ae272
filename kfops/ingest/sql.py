"""SQL sources: any SQLAlchemy URL, read in chunks (server-side cursor), typed by the database.

`postgresql://user@host:5432/db?table=loans` reads a table; with a query
(`--source-query 'SELECT ...'`) the URL names only the database. The rows arrive in chunks
(SQLAlchemy `stream_results`, a named cursor on PostgreSQL), each chunk becomes an Arrow record
batch typed from the column's database type (PostgreSQL type OIDs as psycopg reports them; other
databases: Arrow's inference from the values), and the content sha256 is the hash of those
batches in Arrow IPC form, so the same rows with the same types always give the same digest.

Credentials never travel in the URL: a password there is refused (URLs end up in parameters, logs
and compiled YAML). The password comes from KFOPS_SQL_PASSWORD (any database) or libpq's own
PGPASSWORD / ~/.pgpass (PostgreSQL); on a cluster the Secret `kfops.cluster.SQL_SECRET` provides
KFOPS_SQL_PASSWORD to the ingest step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import urllib.parse
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from kfops import errors
from kfops.ingest import partitions

PASSWORD_ENV = "KFOPS_SQL_PASSWORD"
CHUNK_ROWS = 50_000
_AFTER = "kfops_after"  # the bind parameter of an incremental read's lower bound
# Schemes handled elsewhere in ingest; anything else with "://" is tried as a SQLAlchemy URL.
_NOT_SQL = ("http", "https", "s3", "file", "builtin")

# PostgreSQL type names (psycopg's registry, by OID) -> Arrow type. Numeric becomes float64: the
# model consumes floats, and an unconstrained `numeric` has no fixed decimal precision.
_PG_TYPES = {
    "int2": pa.int64(),
    "int4": pa.int64(),
    "int8": pa.int64(),
    "oid": pa.int64(),
    "float4": pa.float64(),
    "float8": pa.float64(),
    "numeric": pa.float64(),
    "money": None,  # text: locale-formatted
    "bool": pa.bool_(),
    "text": pa.string(),
    "varchar": pa.string(),
    "bpchar": pa.string(),
    "name": pa.string(),
    "uuid": pa.string(),
    "timestamptz": pa.timestamp("ns", tz="UTC"),
    "timestamp": pa.timestamp("ns"),
    "date": pa.timestamp("ns"),
}


@dataclasses.dataclass(frozen=True)
class SqlRead:
    """What a SQL read produced.

    Attributes:
        frame: the rows, typed.
        source: the URL without password (safe to show and record).
        query: the SQL text that was run.
        rows: how many rows were read.
        sha256: digest of the rows (Arrow IPC of the typed batches).
        max_value: the largest value of the incremental column read, or None.
    """

    frame: pd.DataFrame
    source: str
    query: str
    rows: int
    sha256: str
    max_value: Any = None


def is_sql(source: str) -> bool:
    """Whether `source` is a SQLAlchemy URL (a scheme ingest does not handle otherwise)."""
    scheme, sep, _ = source.partition("://")
    return bool(sep) and scheme.split("+", 1)[0].lower() not in _NOT_SQL and scheme.isascii()


def parse(source: str, query: str | None) -> tuple[Any, str, str]:
    """The SQLAlchemy URL (password from the environment), the query to run, the shown URL.

    Raises:
        ConfigError: a password in the URL, neither or both of ?table= and a query, a URL
            SQLAlchemy cannot parse or a dialect that is not installed.
    """
    import sqlalchemy  # noqa: PLC0415 (only SQL sources pay for the import)
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    try:
        url = make_url(source)
    except (sqlalchemy.exc.ArgumentError, ValueError) as e:
        raise errors.ConfigError(f"cannot parse SQL source URL: {e}") from None
    try:
        dialect = url.get_dialect()
    except sqlalchemy.exc.NoSuchModuleError:
        raise errors.ConfigError(
            f"unsupported source scheme {url.drivername!r}: no SQLAlchemy dialect or driver of "
            "that name is installed"
        ) from None
    if url.password is not None or "password" in url.query:
        raise errors.ConfigError(
            "the SQL source URL contains a password; remove it and set "
            f"{PASSWORD_ENV} (or PGPASSWORD for PostgreSQL) in the environment, or on a cluster "
            "the Kubernetes Secret kfops-sql (key KFOPS_SQL_PASSWORD)"
        )
    table = url.query.get("table")
    url = url.difference_update_query(["table"])
    shown = url.render_as_string(hide_password=True)
    if isinstance(table, tuple):
        raise errors.ConfigError(f"{shown}: name one ?table=, got {len(table)}")
    if table and query:
        raise errors.ConfigError(f"{shown}: give either ?table={table} or a query, not both")
    if not table and not query:
        raise errors.ConfigError(
            f"{shown}: name what to read: add ?table=NAME to the URL or pass a query "
            "(--source-query 'SELECT ...')"
        )
    if table:
        quote = dialect().identifier_preparer.quote
        query = f"SELECT * FROM {'.'.join(quote(part) for part in table.split('.'))}"
    password = os.environ.get(PASSWORD_ENV)
    if password:
        url = url.set(password=password)
    return url, query, shown


def read(
    source: str,
    query: str | None = None,
    *,
    incremental_column: str | None = None,
    after: Any = None,
    chunk_rows: int = CHUNK_ROWS,
    window: tuple[int, int] | None = None,
    order_by: Sequence[str] = (),
) -> SqlRead:
    """Runs the query (or reads ?table=) and returns its rows typed, with count and digest.

    Args:
        source: a SQLAlchemy URL without a password.
        query: SQL text; None when the URL names ?table=.
        incremental_column: keep only rows whose column is greater than `after`, and report the
            largest value read.
        after: the watermark (exclusive); None reads everything.
        chunk_rows: rows per fetch from the server-side cursor.
        window: rows [start, stop) of the result ordered by `order_by` (LIMIT/OFFSET): what a
            batch-scoring shard reads, so it never fetches the other shards' rows.
        order_by: the columns that order the rows for `window` (a total order, or ties whose
            rows are interchangeable, or two shards may see the same row).

    Raises:
        ConfigError: see `parse`.
        StorageError: cannot connect or authenticate, or the connection dropped mid-read.
        DataError: the query fails (missing table, bad SQL) or returns no columns.
    """
    import sqlalchemy  # noqa: PLC0415

    url, text, shown = parse(source, query)
    run_text, bind = text, {}
    if incremental_column:
        quote = url.get_dialect()().identifier_preparer.quote
        col = quote(incremental_column)
        run_text = f"SELECT * FROM ({text}) AS kfops_src"
        if after is not None:
            run_text += f" WHERE {col} > :{_AFTER}"
            bind = {_AFTER: after}
        run_text += f" ORDER BY {col}"
    elif window is not None:
        quote = url.get_dialect()().identifier_preparer.quote
        start, stop = (int(v) for v in window)
        run_text = (
            f"SELECT * FROM ({text}) AS kfops_src ORDER BY "
            f"{', '.join(quote(c) for c in order_by)} LIMIT {stop - start} OFFSET {start}"
        )
    engine = _engine(url)
    rows = 0
    digest = hashlib.sha256()
    batches: list[pa.RecordBatch] = []
    try:
        with engine.connect() as conn:
            names, types, chunks = _stream(conn, sqlalchemy.text(run_text), bind, chunk_rows)
            if not names:
                raise errors.DataError(f"{shown}: the query returned no columns")
            for chunk in chunks:
                batch = _batch(chunk, names, types)
                digest.update(partitions.ipc_bytes(batch))
                batches.append(batch)
                rows += len(chunk)
    except Exception as e:  # noqa: BLE001 (DBAPI errors of any driver, classified in _error)
        raise _error(e, shown, rows) from None
    finally:
        engine.dispose()
    table = _table(batches, names, types)
    frame = table.to_pandas()
    top = None
    if incremental_column:
        if incremental_column not in frame.columns:
            raise errors.DataError(
                f"{shown}: incremental column {incremental_column!r} is not in the result "
                f"(columns: {', '.join(names[:20])})"
            )
        if rows:
            top = _python(table.column(incremental_column)[-1].as_py())
    return SqlRead(frame, shown, text, rows, digest.hexdigest(), top)


def count(source: str, query: str | None = None) -> int:
    """How many rows the query (or ?table=) returns, counted by the database.

    Raises:
        ConfigError: see `parse`.
        StorageError: cannot connect.
        DataError: the query fails.
    """
    import sqlalchemy  # noqa: PLC0415

    url, text, shown = parse(source, query)
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            statement = sqlalchemy.text(f"SELECT COUNT(*) FROM ({text}) AS kfops_src")
            return int(conn.execute(statement).scalar_one())
    except Exception as e:  # noqa: BLE001 (DBAPI errors of any driver, classified in _error)
        raise _error(e, shown, 0) from None
    finally:
        engine.dispose()


def _engine(url):
    import sqlalchemy  # noqa: PLC0415

    # NullPool: one connection for one read, closed with it (no pool left behind in a step).
    return sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)


def _stream(conn, statement, bind: dict, chunk_rows: int):
    """(column names, Arrow types, iterator of row chunks) from a server-side cursor.

    PostgreSQL through psycopg: a named cursor (DECLARE ... CURSOR, then FETCH FORWARD
    chunk_rows) on the connection SQLAlchemy opened, `numeric` loaded straight as float, types
    from the columns' OIDs. SQLAlchemy's own row layer costs about as much as the whole read, so
    it is skipped there. Any other database: SQLAlchemy `stream_results` (the dialect's
    server-side cursor where it has one), types inferred from the values.
    """
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        from psycopg.types.numeric import FloatLoader  # noqa: PLC0415

        # psycopg's own placeholders; a str watermark goes as "unknown" and PostgreSQL casts it
        # to the column's type (timestamptz, int, ...).
        text = statement.text.replace("%", "%%").replace(f":{_AFTER}", f"%({_AFTER})s")
        cursor = conn.connection.driver_connection.cursor(name="kfops_ingest")
        cursor.adapters.register_loader("numeric", FloatLoader)
        cursor.execute(text, bind)
        names = [c.name for c in cursor.description or []]
        chunks = iter(lambda: cursor.fetchmany(chunk_rows), [])
        return names, _pg_types(cursor.description or []), chunks
    result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(
        statement, bind
    )
    names = list(result.keys())
    return names, [None] * len(names), result.partitions(chunk_rows)


def _pg_types(description) -> list[pa.DataType | None]:
    """Arrow type per column from its PostgreSQL type OID (psycopg's registry); None = infer."""
    from psycopg import postgres  # noqa: PLC0415

    out = []
    for column in description:
        info = postgres.types.get(column.type_code)
        out.append(_PG_TYPES.get(info.name) if info is not None else None)
    return out


def _batch(chunk, names: list[str], types: list) -> pa.RecordBatch:
    columns = list(zip(*chunk, strict=True)) if chunk else [()] * len(names)
    arrays = [_array(list(values), kind) for values, kind in zip(columns, types, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _array(values: list, kind: pa.DataType | None) -> pa.Array:
    if kind is None:
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return pa.array([None if v is None else str(v) for v in values], pa.string())
    if pa.types.is_floating(kind):
        # Decimal values (numeric) go through Arrow's decimal type, exact, then to float64.
        return pa.array(values).cast(kind) if values else pa.array([], kind)
    return pa.array(values, kind)


def _table(batches: list[pa.RecordBatch], names: list[str], types: list) -> pa.Table:
    """One table; inferred columns that changed type between chunks are unified."""
    if not batches:
        fields = [pa.field(n, t or pa.null()) for n, t in zip(names, types, strict=True)]
        return pa.Table.from_batches([], schema=pa.schema(fields))
    try:
        return pa.Table.from_batches(batches)
    except pa.ArrowInvalid:
        tables = [pa.Table.from_batches([b]) for b in batches]
        return pa.concat_tables(tables, promote_options="permissive")


def _python(value: Any) -> Any:
    """A watermark value JSON can hold (timestamps as ISO text)."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "as_integer_ratio") and not isinstance(value, int | float):
        return float(value)
    return value


def _error(e: Exception, shown: str, rows: int) -> Exception:
    """One line naming the problem, from the driver's own message; other errors pass through.

    A failed connection (refused, wrong password: psycopg raises OperationalError with no
    SQLSTATE before a session exists) and SQLSTATE classes 08 (connection) and 57 (operator
    intervention, e.g. the server shutting down mid-read) are the database being unreachable:
    storage. Anything else the server refused (42: syntax, undefined table or column; 22: data)
    is the query: data.
    """
    import sqlalchemy  # noqa: PLC0415

    if isinstance(e, errors.KfopsError):
        return e
    orig = e.orig if isinstance(e, sqlalchemy.exc.DBAPIError) else e
    dbapi = isinstance(e, sqlalchemy.exc.DBAPIError) or _is_driver_error(orig)
    if not dbapi:
        return e
    message = " ".join(str(orig).split())
    state = str(getattr(orig, "sqlstate", None) or "")
    lost = state.startswith(("08", "57")) or (not state and _is_operational(e, orig))
    if lost and rows:
        return errors.StorageError(
            f"{shown}: the connection to the database was lost after {rows} rows: {message}"
        )
    if lost:
        return errors.StorageError(f"{shown}: cannot connect: {message}")
    return errors.DataError(f"{shown}: the query failed: {message}")


def _is_driver_error(e: Exception) -> bool:
    try:
        import psycopg  # noqa: PLC0415
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(e, psycopg.Error)


def _is_operational(e: Exception, orig: Exception) -> bool:
    import sqlalchemy  # noqa: PLC0415

    if isinstance(e, sqlalchemy.exc.OperationalError):
        return True
    import psycopg  # noqa: PLC0415

    return isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError)


def source_key(source: str, query: str | None) -> str:
    """A stable name for a SQL source + query (the watermark's key): no password ever."""
    url, text, _ = parse(source, query)
    shown = url.set(password=None).render_as_string(hide_password=True)
    return urllib.parse.quote(shown, safe="") + "|" + hashlib.sha256(text.encode()).hexdigest()
