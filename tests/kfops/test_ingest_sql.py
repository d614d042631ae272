"""SQL sources against a real PostgreSQL server (tests/fixtures/postgres.py): types, chunks,
digest, credentials and every failure as one line with the storage/data exit code."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from kfops import errors
from kfops.ingest import core, sql

TYPES_TABLE = """
DROP TABLE IF EXISTS loans;
CREATE TABLE loans (
  id int8 PRIMARY KEY, small int2, amount numeric(12, 2), rate float8, purpose text,
  approved boolean, applied timestamptz, score int4
);
INSERT INTO loans VALUES
  (1, 3, 1200.50, 0.05, 'car', true, '2026-11-30 10:00:00+02', 700),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (3, 5, 99.99, 0.07, 'home', false, '2026-12-01 00:00:00+00', 640);
"""


@pytest.fixture
def pg(postgres, monkeypatch):
    monkeypatch.setenv(sql.PASSWORD_ENV, postgres.password)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    postgres.sql(TYPES_TABLE)
    return postgres


def test_table_read_typed_from_the_database(pg):
    got = core.ingest(pg.url + "?table=loans")
    frame = got.frame.sort_values("id").reset_index(drop=True)
    assert got.format == "sql"
    assert got.rows == 3 and got.query == "SELECT * FROM loans"
    assert str(frame["id"].dtype) == "int64"
    assert str(frame["small"].dtype) == "float64"  # int with NULL: NaN, as pandas holds it
    assert frame["amount"].tolist()[0] == 1200.50 and pd.isna(frame["amount"][1])
    assert str(frame["amount"].dtype) == "float64"
    assert frame["purpose"].tolist() == ["car", None, "home"]
    assert frame["approved"].tolist() == [True, None, False]
    assert str(frame["applied"].dtype) == "datetime64[ns, UTC]"
    assert frame["applied"][0] == pd.Timestamp("2026-11-30 08:00:00", tz="UTC")
    assert pd.isna(frame["applied"][1])
    assert str(frame["score"].dtype) == "float64"


def test_types_hold_for_an_all_null_chunk(pg):
    """Typing comes from the database, not the values: a chunk of NULLs keeps int/timestamp."""
    pg.sql("DROP TABLE IF EXISTS sparse; CREATE TABLE sparse (n int4, t timestamptz, b bool);"
           "INSERT INTO sparse SELECT NULL, NULL, NULL FROM generate_series(1, 5);")  # fmt: skip
    got = sql.read(pg.url + "?table=sparse", chunk_rows=2)
    assert got.rows == 5
    assert str(got.frame["t"].dtype) == "datetime64[ns, UTC]"
    assert str(got.frame["n"].dtype) == "float64"
    assert got.frame["b"].isna().all()


def test_query_chunks_and_digest(pg):
    query = "SELECT id, purpose FROM loans WHERE id <> 2 ORDER BY id"
    a = sql.read(pg.url, query, chunk_rows=1)
    b = sql.read(pg.url, query, chunk_rows=1)
    assert a.rows == 2 and a.query == query and a.frame["id"].tolist() == [1, 3]
    assert a.sha256 == b.sha256 and len(a.sha256) == 64
    pg.sql("UPDATE loans SET purpose = 'boat' WHERE id = 3")
    assert sql.read(pg.url, query).sha256 != a.sha256


def test_percent_signs_in_the_query_are_sql_not_placeholders(pg):
    like = "SELECT id FROM loans WHERE purpose LIKE '%a%' ORDER BY id"
    assert sql.read(pg.url, like).frame["id"].tolist() == [1]
    pg.sql("UPDATE loans SET applied = '2026-12-02Z' WHERE id = 2")
    after = sql.read(pg.url, like.replace(" ORDER BY id", ""), incremental_column="id", after=0)
    assert after.frame["id"].tolist() == [1]


def test_server_side_cursor_is_used(pg, monkeypatch):
    """stream_results: between two chunks the server is serving a cursor, not a full fetch."""
    pg.sql("DROP TABLE IF EXISTS big; CREATE TABLE big AS SELECT generate_series(1, 50000) AS n")
    seen = []
    original = sql._batch

    def look(*args):
        if not seen:  # what the reading session last ran, asked from another session
            seen.append(pg.sql("SELECT query FROM pg_stat_activity WHERE datname = 'kfops' "
                               "AND pid <> pg_backend_pid()"))  # fmt: skip
        return original(*args)

    monkeypatch.setattr(sql, "_batch", look)
    got = sql.read(pg.url + "?table=big", chunk_rows=1000)
    assert got.rows == 50000
    assert "DECLARE" in seen[0] or "FETCH" in seen[0], seen


def test_lineage_metadata_names_query_rows_and_digest(pg):
    got = core.ingest(pg.url, query="SELECT id FROM loans")
    meta = got.metadata()
    assert meta["query"] == "SELECT id FROM loans" and meta["source_rows"] == 3
    assert meta["source_sha256"] == got.source_sha256 and len(got.source_sha256) == 64
    assert meta["source"] == pg.url and pg.password not in str(meta)


def test_password_in_url_is_refused(pg):
    with_password = pg.url.replace("kfops@", f"kfops:{pg.password}@") + "?table=loans"
    with pytest.raises(errors.ConfigError) as e:
        core.ingest(with_password)
    assert sql.PASSWORD_ENV in str(e.value) and pg.password not in str(e.value)


def test_wrong_password(pg, monkeypatch):
    monkeypatch.setenv(sql.PASSWORD_ENV, "wrong")
    with pytest.raises(errors.StorageError) as e:
        core.ingest(pg.url + "?table=loans")
    assert e.value.exit_code == 4
    assert "password authentication failed" in str(e.value) and "\n" not in str(e.value)


def test_pgpassword_works_too(pg, monkeypatch):
    monkeypatch.delenv(sql.PASSWORD_ENV)
    monkeypatch.setenv("PGPASSWORD", pg.password)
    assert core.ingest(pg.url + "?table=loans").rows == 3


def test_missing_table(pg):
    with pytest.raises(errors.DataError) as e:
        core.ingest(pg.url + "?table=no_such_table")
    assert e.value.exit_code == 3
    assert 'relation "no_such_table" does not exist' in str(e.value) and "\n" not in str(e.value)


def test_bad_sql(pg):
    with pytest.raises(errors.DataError) as e:
        core.ingest(pg.url, query="SELEC id FROM loans")
    assert "syntax error" in str(e.value) and "SELEC" in str(e.value) and "\n" not in str(e.value)


def test_table_and_query_or_neither(pg):
    with pytest.raises(errors.ConfigError, match="not both"):
        core.ingest(pg.url + "?table=loans", query="SELECT 1")
    with pytest.raises(errors.ConfigError, match=r"\?table=NAME"):
        core.ingest(pg.url)


def test_unknown_dialect_is_a_config_error():
    with pytest.raises(errors.ConfigError, match="unsupported source scheme 'nosuchdb'"):
        core.ingest("nosuchdb://host/db?table=t")


def test_server_down_before_connect(postgres_factory, monkeypatch):
    server = postgres_factory()
    monkeypatch.setenv(sql.PASSWORD_ENV, server.password)
    server.stop("immediate")
    with pytest.raises(errors.StorageError, match="cannot connect"):
        core.ingest(server.url + "?table=t")


@pytest.mark.parametrize("mode", ["immediate", "fast"])  # the socket just closes / 57P01
def test_server_down_mid_read(postgres_factory, monkeypatch, mode):
    server = postgres_factory()
    monkeypatch.setenv(sql.PASSWORD_ENV, server.password)
    server.sql(
        "CREATE TABLE t AS SELECT g AS n, md5(g::text) AS s FROM generate_series(1, 300000) g"
    )
    stopped = threading.Event()
    original = sql._batch

    def stop_after_first_chunk(*args):
        batch = original(*args)
        if not stopped.is_set():
            stopped.set()
            server.stop(mode)  # the real server goes away between two fetches
        return batch

    monkeypatch.setattr(sql, "_batch", stop_after_first_chunk)
    with pytest.raises(errors.StorageError) as e:
        core.ingest(server.url + "?table=t")
    assert "connection to the database was lost after" in str(e.value)
    assert e.value.exit_code == 4 and "\n" not in str(e.value)


def test_incremental_column_reads_after_the_watermark(pg):
    pg.sql(
        "DROP TABLE IF EXISTS events; CREATE TABLE events (id int, updated_at timestamptz);"
        "INSERT INTO events VALUES (1, '2026-11-01Z'), (2, '2026-11-02Z'), (3, '2026-11-03Z')"
    )
    first = sql.read(pg.url + "?table=events", incremental_column="updated_at")
    assert first.rows == 3 and first.max_value.startswith("2026-11-03T00:00:00")
    pg.sql("INSERT INTO events VALUES (4, '2026-11-04Z')")
    second = sql.read(
        pg.url + "?table=events", incremental_column="updated_at", after=first.max_value
    )
    assert second.frame["id"].tolist() == [4]


def test_incremental_sql_runs_claim_rows_after_the_committed_watermark(pg, tmp_path):
    from kfops import watermarks
    from kfops.runs import records
    from kfops.store import local

    store = local.LocalStore(tmp_path / "store")
    pg.sql(
        "DROP TABLE IF EXISTS ev; CREATE TABLE ev (id int, updated_at timestamptz);"
        "INSERT INTO ev SELECT g, timestamptz '2026-11-01Z' + g * interval '1 hour' "
        "FROM generate_series(1, 5) g"
    )

    def run(run_id, status="succeeded"):
        try:
            return core.ingest(
                pg.url + "?table=ev", incremental=True, incremental_column="updated_at",
                store=store, run_id=run_id,
            )  # fmt: skip
        finally:
            if status:
                store.put_bytes(records.end_key(run_id), records.encode({"status": status}))

    first = run("r1")
    assert first.rows == 5 and first.incremental["new_rows"] == 5
    key = first.incremental["watermark"]
    pg.sql("INSERT INTO ev VALUES (6, '2026-12-01Z'), (7, '2026-12-02Z')")
    failed = run("r2", status="failed")
    assert failed.rows == 2
    assert watermarks.committed(store, key)["value"].startswith("2026-11-01T05:00:00")
    second = run("r3")
    assert second.rows == 2 and sorted(second.frame["id"]) == list(range(1, 8))
    assert second.incremental["after"].startswith("2026-11-01T05:00:00")
    run("r4", status=None)  # still running
    with pytest.raises(errors.StorageError, match="another run is still reading"):
        run("r5", status=None)
    with pytest.raises(errors.ConfigError, match="needs incremental_column"):
        core.ingest(pg.url + "?table=ev", incremental=True, store=store, run_id="r6")
