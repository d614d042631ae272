"""A store in an S3-compatible bucket (MinIO, SeaweedFS, AWS) through the `minio` client.

Why the care around errors: a pipeline step that dies with a 40-line urllib3 traceback, or worse
prints a key, is the usual S3 failure mode. Here every failure becomes one `StorageError` line that
names the endpoint, the bucket and the S3 error code, and the secret key is redacted from anything
we build. Transient failures (connection refused or reset, timeouts, 5xx, SlowDown) are retried with
bounded exponential backoff by urllib3's `Retry` on the HTTP client; an interrupted download resumes
from the byte it reached, pinned to the object's ETag so it never stitches two versions together.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from xml.etree import ElementTree

import minio
import minio.error
import minio.helpers
import urllib3
from urllib3 import exceptions as http_errors

from kfops import config, errors
from kfops.store import base, conditional

_LOG = logging.getLogger(__name__)
_MIB = 1 << 20
_MAX_PARTS = 10_000
_ENV_HELP = (
    "set MINIO_ENDPOINT (host:port), MINIO_ACCESS_KEY and MINIO_SECRET_KEY, "
    "and MINIO_SECURE=true for https"
)
_HINTS = {
    "NoSuchBucket": "the bucket does not exist; create it or fix the store URI",
    "InvalidAccessKeyId": "the access key is unknown; check MINIO_ACCESS_KEY",
    "SignatureDoesNotMatch": "the secret key is wrong; check MINIO_SECRET_KEY",
    "AccessDenied": "the credentials lack permission on this bucket or key",
    "InvalidBucketName": "the bucket name is invalid",
    "PreconditionFailed": "the object changed while it was being read",
}
# Errors worth retrying at the HTTP layer; everything else is permanent and reported at once.
_TRANSIENT_STATUS = (429, 500, 502, 503, 504)
_STREAM_ERRORS = (http_errors.ProtocolError, http_errors.ReadTimeoutError, ConnectionError)


@dataclasses.dataclass(frozen=True)
class S3Tuning:
    """Transfer and retry knobs. Defaults were measured with bench/storage.py (see RESULTS.md).

    On a local server larger parts or more threads did not move throughput (the server is
    CPU-bound); 8 MiB x 4 matches the AWS CLI chunk size, keeps an upload's buffers near 40 MiB,
    and still overlaps four requests where network latency, not CPU, is the limit.

    Attributes:
        part_size: multipart part size in bytes (S3 minimum 5 MiB); files up to this size go in
            one PUT. Memory per upload is about part_size * (parallel_uploads + 1).
        parallel_uploads: parts uploaded concurrently.
        retries: attempts after the first for one HTTP request, or for resuming one download.
        backoff: base of the exponential backoff in seconds (0, 2b, 4b, ... capped).
        backoff_max: cap of a single backoff sleep in seconds.
        connect_timeout: seconds to open a connection.
        read_timeout: seconds without a byte before a read is abandoned (then retried).
        chunk_size: bytes read at a time when streaming a download.
        conditional_writes: how `put_bytes_if` is made atomic: "auto" (probe the server once),
            "server" (If-None-Match / If-Match headers) or "lock" (a lock object; see
            kfops.store.conditional for which servers support what).
        lock_seconds: how long a fallback lock may be held before it counts as a dead writer's
            (and is removed); a writer waits up to twice that for a lock.
    """

    part_size: int = 8 * _MIB
    parallel_uploads: int = 4
    retries: int = 4
    backoff: float = 0.25
    backoff_max: float = 4.0
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    chunk_size: int = _MIB
    conditional_writes: str = "auto"
    lock_seconds: float = 60.0

    def __post_init__(self):
        errors.check_choice("conditional_writes", self.conditional_writes, conditional.MODES)
        if not minio.helpers.MIN_PART_SIZE <= self.part_size <= minio.helpers.MAX_PART_SIZE:
            raise errors.ConfigError(f"part_size must be in [5 MiB, 5 GiB], got {self.part_size}")
        for name in ("parallel_uploads", "chunk_size"):
            if getattr(self, name) < 1:
                raise errors.ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "retries",
            "backoff",
            "backoff_max",
            "connect_timeout",
            "read_timeout",
            "lock_seconds",
        ):
            if getattr(self, name) < 0:
                raise errors.ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")

    def sleep_for(self, attempt: int) -> float:
        """Backoff before retry number `attempt` (1-based), the same curve urllib3 uses."""
        return 0.0 if attempt <= 1 else min(self.backoff_max, self.backoff * 2 ** (attempt - 1))


def parse_uri(uri: str) -> tuple[str, str]:
    """Splits `s3://bucket/some/prefix` into ("bucket", "some/prefix/"); the prefix may be "".

    Raises:
        ConfigError: not an s3:// URI, or the bucket name is invalid.
    """
    if not uri.startswith("s3://"):
        raise errors.ConfigError(f"not an S3 URI: {uri!r}; expected s3://bucket/prefix")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    try:
        minio.helpers.check_bucket_name(bucket, strict=True)
    except ValueError as e:
        raise errors.ConfigError(f"invalid bucket name {bucket!r} in {uri!r}: {e}") from e
    prefix = "/".join(p for p in prefix.split("/") if p)
    return bucket, f"{prefix}/" if prefix else ""


def http_client(tuning: S3Tuning) -> urllib3.PoolManager:
    """The urllib3 pool the minio client uses, with bounded retries on transient failures."""
    retry = urllib3.Retry(
        total=tuning.retries,
        backoff_factor=tuning.backoff,
        backoff_max=tuning.backoff_max,
        status_forcelist=_TRANSIENT_STATUS,
        # Hand the last 5xx to minio so the error names the S3 code instead of "too many retries".
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=tuning.connect_timeout, read=tuning.read_timeout),
        maxsize=max(10, tuning.parallel_uploads + 2),
        retries=retry,
        cert_reqs="CERT_REQUIRED",
    )


class S3Store(base.Store):
    """Objects in `bucket` under `prefix`. Build it with `from_uri`, not directly."""

    def __init__(
        self,
        client: minio.Minio,
        bucket: str,
        prefix: str,
        endpoint: str,
        tuning: S3Tuning,
        secrets: tuple[str, ...] = (),
    ):
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.endpoint, self.tuning, self._secrets = endpoint, tuning, secrets
        self.uri = f"s3://{bucket}/{prefix}".rstrip("/")

    @classmethod
    def from_uri(
        cls, uri: str, settings: config.StoreSettings, tuning: S3Tuning | None = None
    ) -> S3Store:
        """Opens `s3://bucket/prefix` on the endpoint and keys in `settings`.

        Raises:
            ConfigError: bad URI or bucket name, or endpoint/keys missing (names the env vars).
        """
        bucket, prefix = parse_uri(uri)
        missing = [
            env
            for env, value in (
                ("MINIO_ENDPOINT", settings.endpoint),
                ("MINIO_ACCESS_KEY", settings.access_key),
                ("MINIO_SECRET_KEY", settings.secret_key),
            )
            if not value
        ]
        if missing:
            raise errors.ConfigError(f"store {uri} needs {', '.join(missing)}: {_ENV_HELP}")
        tuning = tuning or S3Tuning()
        scheme = "https" if settings.secure else "http"
        try:
            client = minio.Minio(
                settings.endpoint,
                settings.access_key,
                settings.secret_key,
                secure=settings.secure,
                region=settings.region,
                http_client=http_client(tuning),
            )
        except ValueError as e:
            raise errors.ConfigError(
                f"invalid MINIO_ENDPOINT {settings.endpoint!r}: {e}; expected host:port"
            ) from e
        return cls(
            client, bucket, prefix, f"{scheme}://{settings.endpoint}", tuning, settings.secrets()
        )

    def __repr__(self) -> str:
        return f"S3Store({self.uri!r}, endpoint={self.endpoint!r})"

    def object_name(self, key: str) -> str:
        """The bucket-level object name of a store key."""
        key = key.strip("/")
        if not key or ".." in key.split("/"):
            raise errors.ConfigError(f"invalid store key {key!r}")
        return self.prefix + key

    def put_file(self, key: str, path: str | os.PathLike) -> None:
        """Uploads a file, multipart with parallel parts when larger than one part."""
        try:
            size = Path(path).stat().st_size
            source = open(path, "rb")  # noqa: SIM115 (closed below)
        except (FileNotFoundError, IsADirectoryError) as e:
            raise errors.StorageError(f"cannot upload {path}: no such file") from e
        with source, self.translated("upload", key):
            self._put(key, source, size)

    def put_bytes(self, key: str, data: bytes) -> None:
        """Writes a small object in one PUT (atomic: readers see all of it or the old one)."""
        with self.translated("upload", key):
            self._put(key, io.BytesIO(data), len(data))

    def put_bytes_if(self, key: str, data: bytes, expected_tag: str | None) -> str:
        """Create-only or compare-and-swap on the ETag (kfops.store.conditional)."""
        return conditional.put_if(self, key, data, expected_tag)

    def get_bytes_tagged(self, key: str) -> tuple[bytes, str]:
        """The bytes and the ETag of the version they were read from."""
        with self.open_read(key) as reader:
            return reader.read(), reader.raw.etag

    def _put(self, key: str, source: BinaryIO, size: int) -> None:
        # Grow parts for huge files so the upload stays within S3's 10,000-part limit.
        part = max(self.tuning.part_size, math.ceil(size / _MAX_PARTS / _MIB) * _MIB)
        _LOG.debug("put %s (%d bytes, part %d)", self.url_for(key), size, part)
        self.client.put_object(
            self.bucket,
            self.object_name(key),
            source,
            size,
            part_size=part,
            num_parallel_uploads=self.tuning.parallel_uploads,
        )

    def get_file(self, key: str, path: str | os.PathLike) -> None:
        """Streams an object to a temp file beside `path`, then renames it into place."""
        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, self.open_read(key) as reader:
                for chunk in iter(lambda: reader.read(self.tuning.chunk_size), b""):
                    out.write(chunk)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_bytes(self, key: str) -> bytes:
        """Reads a small object whole."""
        with self.open_read(key) as reader:
            return reader.read()

    def open_read(self, key: str) -> BinaryIO:
        """A buffered, streaming reader that resumes an interrupted download where it stopped."""
        return io.BufferedReader(_ObjectReader(self, key), buffer_size=self.tuning.chunk_size)

    def exists(self, key: str) -> bool:
        """Whether the object exists (a HEAD request)."""
        try:
            with self.translated("stat", key):
                self.client.stat_object(self.bucket, self.object_name(key))
        except errors.NotFound:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under a prefix, recursively, in S3's lexicographic order (lazily paged)."""
        return self._iter_keys(prefix)

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        # Fallback locks (kfops.store.conditional) are listed only when asked for by prefix.
        hide = "" if prefix.startswith(conditional.LOCK_PREFIX) else conditional.LOCK_PREFIX
        with self.translated("list", prefix):
            for obj in self.client.list_objects(
                self.bucket, prefix=self.prefix + prefix, recursive=True
            ):
                key = obj.object_name[len(self.prefix) :]
                if not obj.is_dir and not (hide and key.startswith(hide)):
                    yield key

    def delete(self, key: str) -> None:
        """Removes one object; S3 treats a missing key as success."""
        with self.translated("delete", key):
            self.client.remove_object(self.bucket, self.object_name(key))

    def translated(self, op: str, key: str) -> _Translate:
        """A context that turns minio/urllib3 failures into one-line kfops errors."""
        return _Translate(self, op, key)

    def describe(self, op: str, key: str, reason: str) -> str:
        """One line naming operation, object, endpoint and reason, with secrets redacted."""
        line = f"S3 {op} of {self.url_for(key)} at {self.endpoint} failed: {reason}"
        line = " ".join(line.split())
        for secret in self._secrets:
            line = line.replace(secret, "***")
        return line


class _Translate:
    """Maps exceptions from minio and urllib3 to StorageError/NotFound, keeping the cause."""

    def __init__(self, store: S3Store, op: str, key: str):
        self.store, self.op, self.key = store, op, key

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or isinstance(exc, errors.KfopsError):
            return False
        if isinstance(exc, minio.error.S3Error):
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise errors.NotFound(f"no object {self.key!r} in {self.store.uri}") from exc
            hint = _HINTS.get(exc.code, exc.message or "")
            raise errors.StorageError(
                self.store.describe(self.op, self.key, f"{exc.code}: {hint}")
            ) from exc
        if isinstance(exc, minio.error.ServerError):
            reason = f"HTTP {exc.status_code} after {self.store.tuning.retries} retries"
            raise errors.StorageError(self.store.describe(self.op, self.key, reason)) from exc
        if isinstance(exc, minio.error.InvalidResponseError | ElementTree.ParseError):
            reason = "the endpoint did not answer like an S3 server; check MINIO_ENDPOINT"
            raise errors.StorageError(self.store.describe(self.op, self.key, reason)) from exc
        if isinstance(exc, http_errors.HTTPError | ConnectionError):
            reason = f"{network_reason(exc)} after {self.store.tuning.retries} retries; " + (
                "check MINIO_ENDPOINT, MINIO_SECURE and that the server is up"
            )
            raise errors.StorageError(self.store.describe(self.op, self.key, reason)) from exc
        return False


def network_reason(exc: BaseException) -> str:
    """A short human reason for a urllib3 failure, without URLs, object reprs or headers."""
    reason = exc.reason if isinstance(exc, http_errors.MaxRetryError) else exc
    if isinstance(reason, http_errors.NameResolutionError):
        return "unknown host"
    if isinstance(reason, http_errors.NewConnectionError):
        return "connection refused" if "refused" in str(reason).lower() else "cannot connect"
    if isinstance(reason, http_errors.ConnectTimeoutError):
        return "connect timed out"
    if isinstance(reason, http_errors.ReadTimeoutError):
        return "read timed out"
    if isinstance(reason, http_errors.SSLError):
        return "TLS handshake failed"
    if isinstance(reason, http_errors.ProtocolError | ConnectionError):
        return "connection reset"
    return type(reason).__name__


class _ObjectReader(io.RawIOBase):
    """A raw reader over one GET; on a broken stream it re-requests the rest with a Range."""

    def __init__(self, store: S3Store, key: str):
        self._store, self._key = store, key
        self._pos, self._etag, self._attempts = 0, None, 0
        self._response: urllib3.BaseHTTPResponse | None = None
        self._response = self._open()

    def _open(self) -> urllib3.BaseHTTPResponse:
        # If-Match pins a resumed read to the version we started on: a replaced object gives
        # PreconditionFailed instead of a file spliced from two versions.
        headers = {"If-Match": self._etag} if self._etag else None
        with self._store.translated("download", self._key):
            response = self._store.client.get_object(
                self._store.bucket,
                self._store.object_name(self._key),
                offset=self._pos,
                request_headers=headers,
            )
        self._etag = self._etag or response.headers.get("ETag")
        return response

    @property
    def etag(self) -> str:
        """The ETag (unquoted) of the object version being read."""
        return (self._etag or "").strip('"')

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        """Reads into `buffer`, resuming after transient stream errors (bounded)."""
        while True:
            try:
                count = self._response.readinto(buffer)
            except _STREAM_ERRORS as e:
                self._resume(e)
                continue
            self._pos += count
            return count

    def _resume(self, exc: BaseException) -> None:
        self._release()
        self._attempts += 1
        if self._attempts > self._store.tuning.retries:
            reason = f"{network_reason(exc)} while reading, after {self._pos} bytes"
            raise errors.StorageError(self._store.describe("download", self._key, reason)) from exc
        _LOG.warning(
            "download of %s broke after %d bytes (%s); resuming",
            self._store.url_for(self._key),
            self._pos,
            network_reason(exc),
        )
        time.sleep(self._store.tuning.sleep_for(self._attempts))
        self._response = self._open()

    def _release(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response.release_conn()
            self._response = None

    def close(self) -> None:
        self._release()
        super().close()
