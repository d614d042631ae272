"""ingest reads s3://bucket/key sources (CSV, Parquet, JSON lines) from a real S3 server."""

import dataclasses
import io

import pandas as pd
import pytest

from kfops import errors, ingest

FRAME = pd.DataFrame(
    {
        "id": list(range(60)),
        "score": [i / 4 for i in range(60)],
        "plan": ["basic", "pro", "team"] * 20,
    }
)


@pytest.fixture(scope="module")
def source_bucket(s3_server):
    """A bucket holding FRAME as CSV, Parquet and JSON lines (one key without extension)."""
    bucket = s3_server.make_bucket("kfops-sources")
    store = s3_server.store(bucket)
    parquet = io.BytesIO()
    FRAME.to_parquet(parquet, index=False)
    store.put_bytes("raw/data.csv", FRAME.to_csv(index=False).encode())
    store.put_bytes("raw/data.parquet", parquet.getvalue())
    store.put_bytes("raw/data.jsonl", FRAME.to_json(orient="records", lines=True).encode())
    store.put_bytes("raw/export", FRAME.to_csv(index=False).encode())
    return bucket


def _assert_same_rows(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == ["id", "score", "plan"]
    assert frame["id"].tolist() == FRAME["id"].tolist()
    assert frame["score"].tolist() == FRAME["score"].tolist()
    assert frame["plan"].tolist() == FRAME["plan"].tolist()


@pytest.mark.parametrize(
    ("key", "fmt"), [("data.csv", "csv"), ("data.parquet", "parquet"), ("data.jsonl", "jsonl")]
)
def test_ingest_reads_s3_source_in_each_format(s3_server, source_bucket, key, fmt):
    result = ingest.ingest(f"s3://{source_bucket}/raw/{key}", settings=s3_server.settings)
    _assert_same_rows(result.frame)
    assert result.format == fmt
    assert result.source == f"s3://{source_bucket}/raw/{key}"


def test_ingest_reads_s3_key_without_extension_when_format_given(s3_server, source_bucket):
    result = ingest.ingest(
        f"s3://{source_bucket}/raw/export", format="csv", settings=s3_server.settings
    )
    _assert_same_rows(result.frame)


def test_ingest_records_size_and_sha256_of_s3_object(s3_server, source_bucket):
    result = ingest.ingest(f"s3://{source_bucket}/raw/data.csv", settings=s3_server.settings)
    data = s3_server.store(source_bucket).get_bytes("raw/data.csv")
    assert result.source_bytes == len(data)
    assert len(result.source_sha256) == 64


def test_ingest_missing_s3_key_raises_not_found_naming_it(s3_server, source_bucket):
    with pytest.raises(errors.NotFound, match="raw/absent.csv"):
        ingest.ingest(f"s3://{source_bucket}/raw/absent.csv", settings=s3_server.settings)


def test_ingest_s3_with_wrong_secret_fails_without_leaking_it(s3_server, source_bucket):
    wrong = dataclasses.replace(s3_server.settings, secret_key="not-the-secret-123456")
    with pytest.raises(errors.StorageError, match="SignatureDoesNotMatch") as info:
        ingest.ingest(f"s3://{source_bucket}/raw/data.csv", settings=wrong)
    assert "not-the-secret-123456" not in str(info.value)
    assert s3_server.secret_key not in str(info.value)
