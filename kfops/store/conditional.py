"""Conditional writes on S3: the server's If-None-Match / If-Match, or a lock where it lacks them.

The fallback lock is made of plain PUT, LIST and DELETE.

What the servers do (checked; docs/CONTRACTS.md, Registry):
- SeaweedFS: PutObject honours `If-None-Match: *` and `If-Match: "<etag>"` (412 when it fails),
  evaluated under a per-object write lock since 4.18 (seaweedfs PR #8802, `withObjectWriteLock`
  in weed/s3api/s3api_object_handlers_put.go); 3.97-4.17 check them unlocked (PR #7154): racy,
  and no probe can tell, so use "lock" there. tests/kfops/store/test_conditional.py races 16
  writers on one key against the `weed` 4.48 the test fixture runs: exactly one wins, every time.
- MinIO: PutObject evaluates If-Match / If-None-Match since RELEASE.2023-02-09T05-16-53Z
  (minio PR #16551) inside putObject while holding the object's namespace lock
  (cmd/erasure-object.go `CheckPrecondFn` under `NewNSLock`; cmd/object-handlers-common.go
  `checkPreconditionsPUT`), and treats `*` as "any ETag" only since RELEASE.2024-05-07T06-41-25Z
  (PR #19682, `isETagEqual`). Older servers ignore `*` and overwrite: the probe below sees that.
- AWS S3: both headers on PutObject (If-None-Match since 2024-08, If-Match since 2024-11; user
  guide "How to prevent object overwrites with conditional writes",
  docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html); of two concurrent
  conditional writes one may get 409 ConditionalRequestConflict: treated as lost (re-read, retry).

Mode ("auto" by default, `S3Tuning.conditional_writes`): "auto" probes the bucket once per store
(create-only twice, then a wrong If-Match: the second and third must be refused) and uses the
server's conditions if it passes, else the lock; "server" and "lock" force one.

The lock (fallback): a writer PUTs its own candidate object under `.kfops-locks/<key>/`, then
LISTs that prefix; it holds the lock only if its candidate is the only live one, else it deletes
its candidate and retries after a random backoff. This is mutual exclusion on any S3 with
read-after-write consistent LIST (AWS since 2020, MinIO, SeaweedFS's filer): of two writers, the
later one's LIST sees the earlier one's candidate. A candidate older than `lock_seconds` belongs to
a dead writer and is removed; the guarded section is one GET and one small PUT.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid

import minio.error

from kfops import errors
from kfops.store import base

MODES = ("auto", "server", "lock")
LOCK_PREFIX = ".kfops-locks/"
_LOST = ("PreconditionFailed", "ConditionalRequestConflict")
_LOG = logging.getLogger(__name__)


def put_if(store, key: str, data: bytes, expected_tag: str | None) -> str:
    """`Store.put_bytes_if` for an S3Store; returns the new ETag (unquoted)."""
    if mode(store) == "server":
        return server_put(store, key, data, expected_tag)
    with Lock(store, key):
        try:
            with store.translated("stat", key):
                current = store.client.stat_object(store.bucket, store.object_name(key)).etag
        except errors.NotFound:
            current = None
        if current != expected_tag:
            raise base.PreconditionFailed(_lost_message(store, key, expected_tag))
        with store.translated("upload", key):
            return store.client._put_object(store.bucket, store.object_name(key), data).etag


def mode(store) -> str:
    """The store's conditional-write mode, probing the server once when it is "auto"."""
    chosen = getattr(store, "_conditional_mode", None)
    if chosen is None:
        chosen = store.tuning.conditional_writes
        if chosen == "auto":
            chosen = "server" if probe(store) else "lock"
            _LOG.info("%s: conditional writes by %s", store.uri, chosen)
        store._conditional_mode = chosen
    return chosen


def server_put(store, key: str, data: bytes, expected_tag: str | None) -> str:
    """One PUT with If-None-Match: * (create-only) or If-Match: "<etag>" (compare-and-swap)."""
    headers = {"If-None-Match": "*"} if expected_tag is None else {"If-Match": f'"{expected_tag}"'}
    with store.translated("upload", key):
        try:
            # minio's public put_object turns unknown headers into x-amz-meta-* user metadata
            # (minio.helpers.normalize_headers), so the conditions go through the plain PUT it
            # wraps; minio is pinned in constraints.txt.
            result = store.client._put_object(
                store.bucket, store.object_name(key), data, headers=headers
            )
        except minio.error.S3Error as e:
            if e.code in _LOST:
                raise base.PreconditionFailed(_lost_message(store, key, expected_tag)) from e
            raise
    return result.etag


def probe(store) -> bool:
    """Whether the server refuses a second create-only PUT and a PUT with a wrong If-Match."""
    key = f"{LOCK_PREFIX}probe-{uuid.uuid4().hex}"
    try:
        server_put(store, key, b"1", None)
    except errors.StorageError as e:
        if isinstance(e.__cause__, minio.error.S3Error) and e.__cause__.code == "NotImplemented":
            return False
        raise
    try:
        for expected in (None, "0" * 32):
            try:
                server_put(store, key, b"2", expected)
                return False  # the condition was ignored: the object was overwritten
            except base.PreconditionFailed:
                pass
        return True
    finally:
        store.delete(key)


class Lock:
    """Mutual exclusion on one key from plain PUT, LIST and DELETE (see the module doc)."""

    def __init__(self, store, key: str):
        self.store, self.prefix, self.mine = store, f"{LOCK_PREFIX}{key}/", ""

    def __enter__(self) -> Lock:
        tuning = self.store.tuning
        wait = 2 * tuning.lock_seconds  # long enough for a dead holder's lock to expire
        deadline = time.monotonic() + wait
        for attempt in range(1, 1_000_000):
            self.mine = f"{self.prefix}{time.time_ns():020d}-{uuid.uuid4().hex}"
            expires = {"expires_at": time.time() + tuning.lock_seconds}
            self.store.put_bytes(self.mine, json.dumps(expires).encode())
            if not any(self._live(k) for k in self.store.list(self.prefix) if k != self.mine):
                return self
            self.store.delete(self.mine)
            if time.monotonic() > deadline:
                break
            time.sleep(random.uniform(0.005, 0.02) * 2 ** min(attempt, 6))
        raise errors.StorageError(
            f"{self.store.url_for(self.prefix)}: lock still held by another writer after "
            f"{wait:g} s; retry"
        )

    def __exit__(self, *exc) -> None:
        self.store.delete(self.mine)

    def _live(self, key: str) -> bool:
        """Whether another writer's candidate still counts; removes one left by a dead writer."""
        try:
            expires_at = json.loads(self.store.get_bytes(key))["expires_at"]
        except errors.NotFound:
            return False  # withdrawn meanwhile
        except (ValueError, KeyError, TypeError):
            expires_at = 0.0
        if time.time() <= expires_at:
            return True
        self.store.delete(key)
        return False


def _lost_message(store, key: str, expected_tag: str | None) -> str:
    if expected_tag is None:
        return f"{store.url_for(key)} already exists (create-only write refused)"
    return f"{store.url_for(key)} changed since it was read (compare-and-swap lost)"
