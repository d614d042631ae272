"""The storage interface every backend implements, and the URI dispatch."""

from __future__ import annotations

import abc
import os
import re
from collections.abc import Iterator
from typing import BinaryIO

from kfops import config, errors


class PreconditionFailed(errors.AlreadyExists):
    """A conditional write lost: the object exists, or changed since it was read.

    Create-only finds it exists; compare-and-swap finds another tag. The caller re-reads and
    decides again.
    """


class Store(abc.ABC):
    """A flat key space of immutable-or-atomically-replaced objects.

    Every write is atomic from a reader's point of view: a reader sees the old object, the new one,
    or none, never half of one. Conditional writes (`put_bytes_if`) are atomic among writers too:
    of two writers racing on one key with the same expectation, exactly one wins. That is what
    lets concurrent pushers share a registry (docs/CONTRACTS.md, Registry).
    """

    uri: str

    @abc.abstractmethod
    def put_file(self, key: str, path: str | os.PathLike) -> None:
        """Uploads a local file (streamed; multipart for large files on S3)."""

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Writes a small object."""

    @abc.abstractmethod
    def put_bytes_if(self, key: str, data: bytes, expected_tag: str | None) -> str:
        """Writes a small object only if the key is as the caller last saw it; returns the new tag.

        `expected_tag` None: only if the key is absent (create-only); else only if its current
        tag is `expected_tag` (compare-and-swap).

        Raises:
            PreconditionFailed: the key exists (create-only) or its tag differs or it is gone.
        """

    @abc.abstractmethod
    def get_bytes_tagged(self, key: str) -> tuple[bytes, str]:
        """Reads a small object whole with its tag, the value `put_bytes_if` compares against.

        The tag changes whenever the content changes (S3: the ETag; local: the sha256).

        Raises:
            NotFound: no such key.
        """

    @abc.abstractmethod
    def get_file(self, key: str, path: str | os.PathLike) -> None:
        """Downloads an object to a local file, streamed.

        Raises:
            NotFound: no such key.
        """

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Reads a small object whole.

        Raises:
            NotFound: no such key.
        """

    @abc.abstractmethod
    def open_read(self, key: str) -> BinaryIO:
        """A streaming, file-like reader; the caller closes it.

        Raises:
            NotFound: no such key.
        """

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether the key exists."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under a prefix, recursively, in lexicographic order."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Removes one key; a missing key is not an error."""

    def url_for(self, key: str) -> str:
        """A human-readable location of a key, for summaries and logs."""
        return f"{self.uri.rstrip('/')}/{key}"


def open_store(uri: str, settings: config.StoreSettings | None = None) -> Store:
    """Opens the store a URI names.

    Args:
        uri: a local directory (`./.kfops/store`, `/data/store`, `file:///data`) or
            `s3://bucket[/prefix]`.
        settings: S3 endpoint and keys; read from the environment by the caller (CLI, component).

    Raises:
        ConfigError: the URI scheme is unknown or S3 settings are missing.
    """
    from kfops.store import local  # noqa: PLC0415 (keep minio off the local-only path)

    uri = check_uri(uri)
    if uri.startswith("s3://"):
        from kfops.store import s3  # noqa: PLC0415

        return s3.S3Store.from_uri(uri, settings or config.StoreSettings())
    return local.LocalStore(uri.removeprefix("file://"))


ACCEPTED = "a local directory (/abs/path or ./relative/path) or s3://bucket/prefix"
# Something that reads as a scheme before the first '/': `s3:/x`, `gs://x`, `http://x`, `c:x`.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def check_uri(uri: str) -> str:
    """The store URI if it is one kfops accepts; a typo must not become a local directory.

    `s3:/kfops/store` (one slash) would otherwise be the relative directory `s3:/kfops/store`,
    and the run would register its model there and exit 0.

    Raises:
        ConfigError: empty, or any scheme but s3:// (and file://, a local path).
    """
    if not uri or not uri.strip():
        raise errors.ConfigError(f"store URI is empty; give {ACCEPTED}")
    if uri.startswith("s3://") or uri.startswith("file:///"):
        return uri
    if _SCHEME.match(uri):
        raise errors.ConfigError(f"unsupported store URI {uri!r}: give {ACCEPTED}")
    return uri
