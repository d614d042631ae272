import http.server
import socket
import threading
import time

import pandas as pd
import pytest

from kfops import dataio, errors, ingest
from kfops.ingest import fetch


def _write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _read(tmp_path, name, data: bytes, **kwargs) -> ingest.IngestResult:
    return ingest.ingest(str(_write(tmp_path, name, data)), **kwargs)


# ---- sources and formats ------------------------------------------------------------------


def test_ingest_builtin_returns_frame_and_keeps_uri():
    result = ingest.ingest("builtin:churn?rows=50&seed=1")
    assert result.frame.shape == (50, 13)
    assert result.format == "builtin" and result.source == "builtin:churn?rows=50&seed=1"
    assert result.source_sha256 is None


def test_ingest_csv_infers_types_and_treats_empty_cells_as_null(tmp_path):
    data = b"n,x,s,d,b\n1,1.5,a,2024-01-31,true\n2,,,2024-02-01,\n3,2.5,c,2024-02-02,false\n"
    df = _read(tmp_path, "t.csv", data).frame
    assert df["n"].tolist() == [1, 2, 3] and df["n"].dtype == "int64"
    assert df["x"].isna().tolist() == [False, True, False]
    assert df["s"].tolist()[0] == "a" and pd.isna(df["s"][1])
    assert pd.api.types.is_datetime64_any_dtype(df["d"])
    assert df["b"].tolist()[0] is True and pd.isna(df["b"][1])


def test_ingest_csv_reports_format_size_and_sha256(tmp_path):
    path = _write(tmp_path, "t.csv", b"a,b\n1,2\n")
    result = ingest.ingest(str(path))
    assert result.format == "csv" and result.source_bytes == 8
    assert result.source_sha256 == dataio.sha256_file(path)
    assert result.metadata()["source_sha256"] == result.source_sha256


def test_ingest_reads_file_uri(tmp_path):
    path = _write(tmp_path, "t.csv", b"a,b\n1,2\n")
    assert ingest.ingest(path.as_uri()).frame.to_dict("list") == {"a": [1], "b": [2]}


def test_ingest_reads_quoted_fields_with_delimiters_and_newlines(tmp_path):
    df = _read(tmp_path, "q.csv", b'a,b\n1,"x, y"\n2,"line1\nline2"\n').frame
    assert df["b"].tolist() == ["x, y", "line1\nline2"]


def test_ingest_strips_utf8_bom_from_header(tmp_path):
    df = _read(tmp_path, "bom.csv", b"\xef\xbb\xbfa,b\n1,2\n").frame
    assert list(df.columns) == ["a", "b"]


def test_ingest_reads_tsv_by_extension(tmp_path):
    assert _read(tmp_path, "t.tsv", b"a\tb\n1\t2\n").frame.shape == (1, 2)


def test_ingest_reads_semicolon_file_when_delimiter_given(tmp_path):
    df = _read(tmp_path, "s.csv", b"a;b\n1;2\n", delimiter=";").frame
    assert df.to_dict("list") == {"a": [1], "b": [2]}


def test_ingest_reads_parquet_exactly(tmp_path, churn_frame, churn_parquet):
    result = ingest.ingest(str(churn_parquet))
    assert result.format == "parquet"
    pd.testing.assert_frame_equal(result.frame, churn_frame)


def test_ingest_keeps_named_parquet_index_as_column(tmp_path):
    pd.DataFrame({"id": ["a", "b"], "v": [1, 2]}).set_index("id").to_parquet(tmp_path / "i.parquet")
    df = ingest.ingest(str(tmp_path / "i.parquet")).frame
    assert df.to_dict("list") == {"id": ["a", "b"], "v": [1, 2]}


@pytest.mark.parametrize("name", ["r.jsonl", "r.ndjson", "r.json"])
def test_ingest_reads_json_lines(tmp_path, name):
    df = _read(tmp_path, name, b'{"a": 1, "b": "x"}\n\n{"a": 2, "b": "y"}\n').frame
    assert df.to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}


def test_ingest_reads_json_array_of_records(tmp_path):
    df = _read(tmp_path, "r.json", b'[{"a": 1}, {"a": 2, "b": true}]').frame
    assert df["a"].tolist() == [1, 2] and df["b"].tolist()[1] is True


def test_ingest_turns_mixed_json_column_into_text_that_parquet_can_store(tmp_path):
    df = _read(
        tmp_path, "m.jsonl", b'{"a": 1, "b": true}\n{"a": "x", "b": null}\n{"a": null}\n'
    ).frame
    assert df["a"].tolist() == ["1", "x", None]
    assert df["b"].tolist()[0] is True  # booleans with nulls are not mixed: kept as they are
    assert dataio.write_frame(df, tmp_path / "out.parquet")["rows"] == 3


def test_ingest_sniffs_format_without_extension(tmp_path, churn_parquet):
    (tmp_path / "blob").write_bytes(churn_parquet.read_bytes())
    assert ingest.ingest(str(tmp_path / "blob")).format == "parquet"
    assert _read(tmp_path, "lines", b'{"a": 1}\n').format == "jsonl"
    assert _read(tmp_path, "table", b"a,b\n1,2\n").format == "csv"


def test_ingest_format_overrides_extension(tmp_path):
    result = _read(tmp_path, "data.txt", b'{"a": 1}\n', format="ndjson")
    assert result.format == "jsonl" and result.frame["a"].tolist() == [1]


def test_ingest_refuses_unknown_format():
    with pytest.raises(errors.ConfigError, match="unknown format 'xlsx'; use one of csv, tsv"):
        ingest.ingest("builtin:churn", format="xlsx")


# ---- malformed input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "match", "name", "data"),
    [
        pytest.param(
            errors.DataError, r"empty\.csv is empty \(0 bytes\)", "empty.csv", b"", id="empty_file"
        ),
        pytest.param(
            errors.DataError,
            r"has a header but no rows \(columns: a, b\)",
            "h.csv",
            b"a,b\r\n",
            id="header_only",
        ),
        pytest.param(
            errors.DataError,
            r"looks '\|'-delimited.*pass --delimiter '\|' \(or --format tsv\)$",
            "p.csv",
            b"a|b|c\n1|2|3\n",
            id="other_delimiter",
        ),
        pytest.param(
            errors.DataError,
            r"byte 0xff at offset 6 \(line 2\)",
            "bad.csv",
            b"a,b\n1,\xff\n",
            id="non_utf8",
        ),
        pytest.param(
            errors.SchemaViolation,
            r"'b' violates duplicate_column.*\[2, 3\]",
            "d.csv",
            b"a,b,b\n1,2,3\n",
            id="duplicated_columns",
        ),
        pytest.param(
            errors.SchemaViolation,
            "'a' violates duplicate_column.*line 2",
            "d.jsonl",
            b'{"a": 1}\n{"a": 1, "a": 2}\n',
            id="duplicated_json_keys",
        ),
        pytest.param(
            errors.DataError,
            r"line 3 has 1 field\(s\), the header has 2",
            "r.csv",
            b"a,b\n1,2\n3\n4,5\n",
            id="short_ragged_row",
        ),
        pytest.param(
            errors.DataError,
            r"line 2 has 3 field\(s\), the header has 2",
            "r.csv",
            b"a,b\n1,2,3\n4,5\n",
            id="long_ragged_row",
        ),
    ],
)
def test_ingest_refuses_malformed_file(tmp_path, error, match, name, data):
    with pytest.raises(error, match=match):
        _read(tmp_path, name, data)


def test_ingest_finds_non_utf8_byte_beyond_first_chunk(tmp_path):
    body = b"a\n" + b"x\n" * 600_000 + b"\xe9\n"
    with pytest.raises(errors.DataError, match=r"offset 1200002 \(line 600002\)"):
        _read(tmp_path, "big.csv", body)


def test_ingest_refuses_truncated_parquet(tmp_path, churn_parquet):
    data = churn_parquet.read_bytes()
    with pytest.raises(errors.DataError, match="not a readable Parquet file"):
        _read(tmp_path, "cut.parquet", data[: len(data) - 100])


def test_ingest_names_line_of_invalid_json(tmp_path):
    with pytest.raises(errors.DataError, match="invalid JSON at line 2"):
        _read(tmp_path, "b.jsonl", b'{"a": 1}\n{"a": }\n')


def test_ingest_refuses_json_lines_that_are_not_objects(tmp_path):
    with pytest.raises(errors.DataError, match="line 2 holds a JSON list, expected an object"):
        _read(tmp_path, "b.jsonl", b'{"a": 1}\n[1, 2]\n')


def test_ingest_refuses_missing_file_and_directory(tmp_path):
    with pytest.raises(errors.DataError, match="no such file"):
        ingest.ingest(str(tmp_path / "nope.csv"))
    with pytest.raises(errors.DataError, match="is a directory"):
        ingest.ingest(str(tmp_path))


def test_ingest_refuses_file_over_max_bytes(tmp_path):
    with pytest.raises(errors.DataError, match="is 12 bytes, more than max_bytes=10"):
        _read(tmp_path, "big.csv", b"a,b\n1,2\n3,4\n", max_bytes=10)


def test_ingest_refuses_unsupported_scheme():
    with pytest.raises(errors.ConfigError, match="unsupported source scheme 'ftp'"):
        ingest.ingest("ftp://example.com/data.csv")


def test_ingest_refuses_s3_uri_without_key():
    with pytest.raises(errors.ConfigError, match="must name an object"):
        ingest.ingest("s3://bucket")


# ---- http(s) ------------------------------------------------------------------------------


class _Routes(http.server.BaseHTTPRequestHandler):
    """Serves `routes[path] = (status, headers, body, delay)`; no Content-Length if streamed."""

    routes: dict = {}
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes

    def do_GET(self):  # noqa: N802 (http.server's naming)
        status, headers, body, delay = self.routes.get(self.path.split("?")[0], (404, {}, b"", 0))
        time.sleep(delay)
        self.send_response(status)
        for key, value in headers.items():
            if key != "streamed":
                self.send_header(key, value)
        if not headers.get("streamed"):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (the timeout and size-limit tests)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """A real HTTP server on 127.0.0.1 serving the routes the test sets."""
    routes = {}
    handler = type("Handler", (_Routes,), {"routes": routes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", routes
    server.shutdown()
    server.server_close()


def test_ingest_downloads_csv_over_http(http_server):
    base, routes = http_server
    routes["/d/data.csv"] = (200, {"Content-Type": "text/csv"}, b"a,b\n1,2\n", 0)
    result = ingest.ingest(f"{base}/d/data.csv")
    assert result.format == "csv" and result.frame.to_dict("list") == {"a": [1], "b": [2]}


def test_ingest_uses_content_type_when_url_has_no_extension(http_server):
    base, routes = http_server
    routes["/export"] = (200, {"Content-Type": "application/x-ndjson"}, b'{"a": 1}\n', 0)
    assert ingest.ingest(f"{base}/export").format == "jsonl"


def test_ingest_redacts_query_values_in_source(http_server):
    base, routes = http_server
    routes["/data.csv"] = (200, {}, b"a\n1\n", 0)
    result = ingest.ingest(f"{base}/data.csv?X-Amz-Signature=s3cr3t")
    assert "s3cr3t" not in result.source and result.source.endswith("?X-Amz-Signature=***")


@pytest.mark.parametrize("status", [403, 404, 500])
def test_ingest_names_http_error_status(http_server, status):
    base, routes = http_server
    routes["/data.csv"] = (status, {}, b"", 0)
    with pytest.raises(errors.DataError, match=f"GET .*/data.csv failed: HTTP {status}"):
        ingest.ingest(f"{base}/data.csv")


def test_ingest_refuses_declared_oversize_download(http_server):
    base, routes = http_server
    routes["/big.csv"] = (200, {}, b"a\n" + b"1\n" * 100, 0)
    with pytest.raises(errors.DataError, match="is 202 bytes, more than max_bytes=50"):
        ingest.ingest(f"{base}/big.csv", max_bytes=50)


def test_ingest_stops_undeclared_oversize_download(http_server):
    base, routes = http_server
    routes["/stream.csv"] = (200, {"streamed": True}, b"a\n" + b"1\n" * 100, 0)
    with pytest.raises(errors.DataError, match="larger than max_bytes=50"):
        ingest.ingest(f"{base}/stream.csv", max_bytes=50)


def test_ingest_times_out_on_slow_server(http_server):
    base, routes = http_server
    routes["/slow.csv"] = (200, {}, b"a\n1\n", 1.5)
    with pytest.raises(errors.DataError, match="timed out after 0.3 s"):
        ingest.ingest(f"{base}/slow.csv", timeout=0.3)


def test_ingest_names_unreachable_host():
    with socket.socket() as s:  # a port nobody listens on: bound, then closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(errors.DataError, match=f"cannot reach http://127.0.0.1:{port}/x.csv"):
        ingest.ingest(f"http://127.0.0.1:{port}/x.csv")


def test_redact_removes_password_and_query_values():
    shown = fetch.redact("https://user:pw@host.example:8443/a.csv?token=abc&x=1")
    assert shown == "https://host.example:8443/a.csv?token=***&x=***"


def test_redact_keeps_plain_uris():
    assert fetch.redact("https://host/a.csv") == "https://host/a.csv"
    assert fetch.redact("builtin:churn?rows=5") == "builtin:churn?rows=5"
