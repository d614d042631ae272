"""Conditional writes (create-only, compare-and-swap) on the local store and on a real S3 server,
both with SeaweedFS's own If-None-Match / If-Match and with the lock fallback."""

import json
import threading
import time
import uuid

import pytest

from kfops.store import base, conditional, local, s3

RACERS = 16


def _race(stores, attempt):
    """Runs attempt(store, i) in RACERS threads, each with its own store, started together."""
    barrier, outcomes = threading.Barrier(RACERS), [None] * RACERS

    def run(i):
        store = stores()
        barrier.wait()
        try:
            outcomes[i] = attempt(store, i)
        except base.PreconditionFailed as e:
            outcomes[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_create_only_refuses_an_existing_key_and_keeps_it(stores):
    store = stores()
    tag = store.put_bytes_if("k", b"first", None)
    with pytest.raises(base.PreconditionFailed, match="already exists"):
        store.put_bytes_if("k", b"second", None)
    assert store.get_bytes_tagged("k") == (b"first", tag)


def test_compare_and_swap_needs_the_current_tag(stores):
    store = stores()
    old = store.put_bytes_if("k", b"v1", None)
    new = store.put_bytes_if("k", b"v2", old)
    assert store.get_bytes_tagged("k") == (b"v2", new)
    with pytest.raises(base.PreconditionFailed, match="changed since it was read"):
        store.put_bytes_if("k", b"v3", old)  # stale tag
    with pytest.raises(base.PreconditionFailed):
        store.put_bytes_if("missing", b"v", new)  # CAS on an absent key
    assert store.get_bytes("k") == b"v2"


def test_racing_create_only_writers_exactly_one_wins(stores):
    outcomes = _race(stores, lambda st, i: st.put_bytes_if("race", f"w{i}".encode(), None))
    winners = [i for i, o in enumerate(outcomes) if isinstance(o, str)]
    assert len(winners) == 1, outcomes
    assert stores().get_bytes("race") == f"w{winners[0]}".encode()


def test_racing_compare_and_swap_from_one_tag_exactly_one_wins(stores):
    start = stores().put_bytes_if("cas", b"start", None)
    outcomes = _race(stores, lambda st, i: st.put_bytes_if("cas", f"w{i}".encode(), start))
    winners = [i for i, o in enumerate(outcomes) if isinstance(o, str)]
    assert len(winners) == 1, outcomes
    assert stores().get_bytes_tagged("cas") == (f"w{winners[0]}".encode(), outcomes[winners[0]])


def test_racing_increments_by_compare_and_swap_lose_no_update(stores):
    stores().put_bytes_if("counter", b"0", None)

    def increment(store, _):
        for _ in range(3):
            while True:
                data, tag = store.get_bytes_tagged("counter")
                try:
                    return store.put_bytes_if("counter", str(int(data) + 1).encode(), tag)
                except base.PreconditionFailed:
                    continue

    _race(stores, increment)
    assert stores().get_bytes("counter") == str(RACERS).encode()


def test_seaweedfs_supports_conditional_puts_so_auto_uses_them(s3_server, s3_shared_bucket):
    store = s3_server.store(s3_shared_bucket, f"p-{uuid.uuid4().hex[:8]}")
    assert conditional.probe(store) is True
    assert conditional.mode(store) == "server"
    assert list(store.list("")) == []  # the probe cleaned up after itself


def test_probe_sees_a_server_that_ignores_the_conditions(s3_server, s3_shared_bucket):
    store = s3_server.store(s3_shared_bucket, f"p-{uuid.uuid4().hex[:8]}")
    # A server that ignores If-None-Match / If-Match answers a conditional PUT like a plain one.
    store.client._put_object = _dropping_headers(store.client._put_object)
    assert conditional.probe(store) is False
    assert conditional.mode(store) == "lock"


def _dropping_headers(put):
    return lambda bucket, name, data, headers=None: put(bucket, name, data)


def test_lock_fallback_removes_a_dead_writers_stale_lock(s3_server, s3_shared_bucket):
    tuning = s3.S3Tuning(conditional_writes="lock", lock_seconds=5)
    store = s3_server.store(s3_shared_bucket, f"l-{uuid.uuid4().hex[:8]}", tuning)
    stale = f"{conditional.LOCK_PREFIX}k/00000000000000000001-dead"
    store.put_bytes(stale, json.dumps({"expires_at": time.time() - 1}).encode())
    started = time.monotonic()
    store.put_bytes_if("k", b"v", None)
    assert time.monotonic() - started < 2
    assert list(store.list(conditional.LOCK_PREFIX)) == []
    assert list(store.list("")) == ["k"]


def test_lock_fallback_waits_for_a_live_lock_then_gives_up(s3_server, s3_shared_bucket):
    prefix = f"l-{uuid.uuid4().hex[:8]}"
    holder = s3_server.store(s3_shared_bucket, prefix, s3.S3Tuning(conditional_writes="lock"))
    tuning = s3.S3Tuning(conditional_writes="lock", lock_seconds=0.5)
    store = s3_server.store(s3_shared_bucket, prefix, tuning)
    with conditional.Lock(holder, "k"):  # held for up to 60 s by the holder's own setting
        assert list(store.list("")) == []  # a held lock is not a key of the store
        started = time.monotonic()
        with pytest.raises(base.errors.StorageError, match="lock still held"):
            store.put_bytes_if("k", b"v", None)
        assert 1 <= time.monotonic() - started < 5
    assert not store.exists("k")
    store.put_bytes_if("k", b"v", None)  # released: the next writer gets in at once
    assert store.get_bytes("k") == b"v"


def test_local_store_hides_compare_and_swap_lock_files(tmp_path):
    store = local.LocalStore(tmp_path)
    tag = store.put_bytes_if("a/k", b"1", None)
    store.put_bytes_if("a/k", b"2", tag)
    assert (tmp_path / "a" / ".k.lock").exists()
    assert list(store.list("")) == ["a/k"]
