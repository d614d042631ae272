"""The Store contract, run against both backends (local directory, real S3 server)."""

import hashlib
import os

import pytest

from kfops import errors


def test_store_put_bytes_then_get_bytes_returns_same_bytes(any_store):
    any_store.put_bytes("a/b.txt", b"hello")
    assert any_store.get_bytes("a/b.txt") == b"hello"


def test_store_put_bytes_replaces_existing_object(any_store):
    any_store.put_bytes("k", b"old")
    any_store.put_bytes("k", b"new value")
    assert any_store.get_bytes("k") == b"new value"


def test_store_put_file_then_get_file_round_trips_multipart_sized_file(any_store, tmp_path):
    # 11 MiB: more than one 5 MiB part, so S3 goes through a parallel multipart upload.
    data = os.urandom(11 * (1 << 20))
    src, dest = tmp_path / "src.bin", tmp_path / "out" / "dest.bin"
    src.write_bytes(data)
    any_store.put_file("big/blob.bin", src)
    any_store.get_file("big/blob.bin", dest)
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_store_get_file_leaves_no_temp_file_behind(any_store, tmp_path):
    any_store.put_bytes("x", b"1")
    any_store.get_file("x", tmp_path / "d" / "x")
    assert os.listdir(tmp_path / "d") == ["x"]


def test_store_open_read_streams_content_in_chunks(any_store):
    any_store.put_bytes("s", b"0123456789" * 1000)
    with any_store.open_read("s") as reader:
        first = reader.read(10)
        rest = reader.read()
    assert first == b"0123456789"
    assert len(rest) == 9990


def test_store_exists_is_true_only_for_written_keys(any_store):
    any_store.put_bytes("here", b"x")
    assert any_store.exists("here")
    assert not any_store.exists("missing")


@pytest.mark.parametrize("method", ["get_bytes", "open_read"])
def test_store_read_raises_not_found_when_key_missing(any_store, method):
    with pytest.raises(errors.NotFound, match="nope"):
        getattr(any_store, method)("nope")


def test_store_get_file_raises_not_found_when_key_missing(any_store, tmp_path):
    with pytest.raises(errors.NotFound, match="nope"):
        any_store.get_file("nope", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_store_list_returns_keys_under_prefix_sorted(any_store):
    for key in ["m/b/2", "m/a/1", "other/x", "m/a/0"]:
        any_store.put_bytes(key, b"v")
    assert list(any_store.list("m/")) == ["m/a/0", "m/a/1", "m/b/2"]
    assert list(any_store.list()) == ["m/a/0", "m/a/1", "m/b/2", "other/x"]


def test_store_list_is_empty_for_fresh_store(any_store):
    assert list(any_store.list()) == []


def test_store_delete_removes_key_and_ignores_missing(any_store):
    any_store.put_bytes("gone", b"x")
    any_store.delete("gone")
    any_store.delete("never-was")
    assert not any_store.exists("gone")


def test_store_put_file_raises_storage_error_when_source_missing(any_store, tmp_path):
    with pytest.raises(errors.StorageError, match="no such file"):
        any_store.put_file("k", tmp_path / "absent.bin")


@pytest.mark.parametrize("key", ["", "/", "a/../../escape"])
def test_store_rejects_invalid_keys(any_store, key):
    with pytest.raises(errors.ConfigError, match="invalid store key"):
        any_store.put_bytes(key, b"x")


def test_store_list_matches_partial_name_prefix_like_s3(any_store):
    for key in ["m/a/1", "m/ab", "m/b"]:
        any_store.put_bytes(key, b"v")
    assert list(any_store.list("m/a")) == ["m/a/1", "m/ab"]
