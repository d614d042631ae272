"""Object storage: one small interface, two implementations (local directory, S3 via minio).

Use `open_store(uri, settings)`: a plain path gives `LocalStore`, `s3://bucket/prefix` gives
`S3Store`; any other scheme (and a typo such as `s3:/bucket`) is a ConfigError naming the accepted
forms. Commands that only read use `open_existing` (a missing store is an error, not "nothing
here"); commands that write use `open_writable` (a file or read-only directory is one line).
Keys are '/'-separated and relative to the store's root.
"""

from __future__ import annotations

import os
from pathlib import Path

from kfops import config, errors
from kfops.store.base import ACCEPTED, Store, check_uri, open_store

__all__ = ["ACCEPTED", "Store", "check_uri", "open_existing", "open_store", "open_writable"]


def open_existing(uri: str, settings: config.StoreSettings | None = None) -> Store:
    """The store at `uri`, which must exist: a reader on a wrong path must not print "no models".

    Raises:
        ConfigError: a bad URI, or a local path that is a file.
        NotFound: no directory at the local path, or no such S3 bucket.
    """
    st = open_store(uri, settings)
    if uri.startswith("s3://"):
        with st.translated("check", ""):
            found = st.client.bucket_exists(st.bucket)
        if not found:
            raise errors.NotFound(f"no store at {uri}: bucket {st.bucket!r} does not exist")
        return st
    path = _local_path(uri)
    if not path.is_dir():
        raise errors.NotFound(f"no store at {uri!r}: no such directory (check --store)")
    return st


def open_writable(uri: str, settings: config.StoreSettings | None = None) -> Store:
    """The store at `uri`, checked before anything runs, so a bad --store is one line.

    A local directory (or the nearest existing parent of one not made yet) must take a file;
    S3 access is checked by the first write, which names the object.

    Raises:
        ConfigError: a bad URI, a path that is (or runs through) a file, or no write permission.
    """
    st = open_store(uri, settings)
    if not uri.startswith("s3://"):
        path = _local_path(uri)
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise errors.ConfigError(f"store {uri!r}: {blocker} is a file, not a directory")
        # probed where the first write will create something: the store, or its nearest parent
        existing = next(p for p in (path, *path.parents) if p.exists())
        probe = existing / f".kfops-write-probe-{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise errors.ConfigError(f"store {uri!r} is not writable: {e.strerror}") from None
    return st


def _local_path(uri: str) -> Path:
    path = Path(uri.removeprefix("file://")).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise errors.ConfigError(f"store {uri!r} is a file, not a directory")
    return path
