"""S3Store against a real SeaweedFS server: configuration, permanent and transient failures."""

import dataclasses
import logging
import os

import pytest

from kfops import config, errors
from kfops.store import base, s3
from tests.fixtures import s3 as s3_fixtures

FAST = s3.S3Tuning(retries=2, backoff=0.05, backoff_max=0.2, connect_timeout=2, read_timeout=5)


@pytest.fixture
def bucket(s3_server, s3_shared_bucket):
    return s3_shared_bucket


def _one_line_without_secret(message: str, server) -> None:
    assert "\n" not in message
    assert server.secret_key not in message


def test_parse_uri_splits_bucket_and_normalises_prefix():
    assert s3.parse_uri("s3://bkt") == ("bkt", "")
    assert s3.parse_uri("s3://bkt/") == ("bkt", "")
    assert s3.parse_uri("s3://bkt//a/b/") == ("bkt", "a/b/")


@pytest.mark.parametrize("uri", ["s3://", "s3://ab/x", "s3://Bad_Bucket/x", "/tmp/x"])
def test_parse_uri_rejects_invalid_bucket_or_scheme(uri):
    with pytest.raises(errors.ConfigError, match="bucket|S3 URI"):
        s3.parse_uri(uri)


def test_from_uri_names_every_missing_env_var_when_settings_empty():
    with pytest.raises(errors.ConfigError) as info:
        s3.S3Store.from_uri("s3://bkt/p", config.StoreSettings())
    message = str(info.value)
    for var in ("MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_SECURE"):
        assert var in message


def test_from_uri_names_only_the_missing_key_without_leaking_the_given_one():
    settings = config.StoreSettings(endpoint="127.0.0.1:9", secret_key="s3cr3t-value-xyz")
    with pytest.raises(errors.ConfigError, match="needs MINIO_ACCESS_KEY:") as info:
        s3.S3Store.from_uri("s3://bkt/p", settings)
    assert "s3cr3t-value-xyz" not in str(info.value)


def test_from_uri_rejects_endpoint_with_path():
    settings = config.StoreSettings(endpoint="host:9000/path", access_key="a", secret_key="b")
    with pytest.raises(errors.ConfigError, match="invalid MINIO_ENDPOINT"):
        s3.S3Store.from_uri("s3://bkt/p", settings)


def test_open_store_gives_s3_store_for_s3_uri(s3_server, bucket):
    store = base.open_store(f"s3://{bucket}/p", s3_server.settings)
    assert isinstance(store, s3.S3Store)
    assert store.uri == f"s3://{bucket}/p"


def test_s3_store_repr_shows_uri_and_endpoint_but_not_secret(s3_server, bucket):
    store = s3_server.store(bucket, "p")
    assert s3_server.endpoint in repr(store)
    assert s3_server.secret_key not in repr(store)


def test_s3_store_prefix_isolates_keys_from_rest_of_bucket(s3_server, bucket):
    one, two = s3_server.store(bucket, "iso/one"), s3_server.store(bucket, "iso/two")
    one.put_bytes("k", b"1")
    assert not two.exists("k")
    assert list(one.list()) == ["k"]


def test_s3_store_put_file_uses_multipart_with_tuned_part_size(s3_server, bucket, tmp_path):
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(12 << 20))
    store = s3_server.store(bucket, "mp", s3.S3Tuning(part_size=5 << 20))
    store.put_file("f.bin", src)
    stat = s3_server.client().stat_object(bucket, "mp/f.bin")
    # An S3 multipart ETag ends in "-<parts>": 12 MiB in 5 MiB parts is 3 parts.
    assert stat.etag.endswith("-3")
    assert stat.size == 12 << 20


@pytest.mark.parametrize(
    ("field", "code"),
    [("secret_key", "SignatureDoesNotMatch"), ("access_key", "InvalidAccessKeyId")],
)
def test_s3_store_wrong_credentials_raise_one_line_naming_code_without_secret(
    s3_server, bucket, caplog, field, code
):
    wrong = dataclasses.replace(s3_server.settings, **{field: "wrong-" + os.urandom(4).hex()})
    store = s3.S3Store.from_uri(f"s3://{bucket}/p", wrong, FAST)
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.StorageError) as info:
        store.put_bytes("k", b"x")
    message = str(info.value)
    assert code in message and bucket in message and s3_server.endpoint in message
    _one_line_without_secret(message, s3_server)
    assert wrong.secret_key not in message + repr(info.value) + caplog.text


def test_s3_store_missing_bucket_raises_no_such_bucket(s3_server):
    store = s3_server.store("kfops-never-created", "p")
    with pytest.raises(errors.StorageError, match="NoSuchBucket") as info:
        list(store.list())
    assert "kfops-never-created" in str(info.value)
    _one_line_without_secret(str(info.value), s3_server)


def test_s3_store_unreachable_endpoint_raises_connection_refused(s3_server, caplog):
    port = s3_fixtures.free_ports(1)[0]
    settings = dataclasses.replace(s3_server.settings, endpoint=f"127.0.0.1:{port}")
    store = s3.S3Store.from_uri("s3://some-bucket/p", settings, FAST)
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.StorageError) as info:
        store.get_bytes("k")
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "some-bucket" in message
    assert "connection refused after 2 retries" in message
    _one_line_without_secret(message, s3_server)
    assert s3_server.secret_key not in caplog.text


def test_s3_store_retries_connection_reset_then_succeeds(s3_server, bucket, fault_proxy):
    proxy = fault_proxy(s3_server.ports["s3"])
    store = s3.S3Store.from_uri(
        f"s3://{bucket}/reset",
        dataclasses.replace(s3_server.settings, endpoint=proxy.endpoint),
        FAST,
    )
    proxy.reset_next = 2
    store.put_bytes("k", b"survived")
    assert store.get_bytes("k") == b"survived"
    assert proxy.reset_next == 0


def test_s3_store_retries_503_slow_down_then_succeeds(s3_server, bucket, fault_proxy):
    s3_server.store(bucket, "slow").put_bytes("k", b"v")
    proxy = fault_proxy(s3_server.ports["s3"])
    # Faults hit new connections: set them before the store opens its first (pooled) one.
    proxy.slow_down_next = 2
    store = s3.S3Store.from_uri(
        f"s3://{bucket}/slow",
        dataclasses.replace(s3_server.settings, endpoint=proxy.endpoint),
        FAST,
    )
    assert store.get_bytes("k") == b"v"
    assert proxy.slow_down_next == 0


def test_s3_store_gives_up_on_persistent_503_with_s3_code(s3_server, bucket, fault_proxy):
    proxy = fault_proxy(s3_server.ports["s3"])
    store = s3.S3Store.from_uri(
        f"s3://{bucket}/slow",
        dataclasses.replace(s3_server.settings, endpoint=proxy.endpoint),
        FAST,
    )
    proxy.slow_down_next = 10
    with pytest.raises(errors.StorageError, match="SlowDown") as info:
        store.get_bytes("k")
    assert proxy.slow_down_next == 7  # first try + 2 retries, then a clear error
    _one_line_without_secret(str(info.value), s3_server)


def test_s3_store_download_resumes_after_stream_cut(
    s3_server, bucket, fault_proxy, tmp_path, caplog
):
    data = os.urandom(3 << 20)
    direct = s3_server.store(bucket, "cut")
    direct.put_bytes("blob", data)
    proxy = fault_proxy(s3_server.ports["s3"])
    store = s3.S3Store.from_uri(
        f"s3://{bucket}/cut", dataclasses.replace(s3_server.settings, endpoint=proxy.endpoint), FAST
    )
    proxy.cut_download_after = 1 << 20
    with caplog.at_level(logging.WARNING, logger="kfops.store.s3"):
        store.get_file("blob", tmp_path / "blob")
    resumed_at = [r.args[1] for r in caplog.records if "resuming" in r.getMessage()]
    assert len(resumed_at) == 1 and 0 < resumed_at[0] < len(data)  # cut mid-body, resumed once
    assert (tmp_path / "blob").read_bytes() == data
