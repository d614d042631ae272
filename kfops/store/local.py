"""A store in a local directory: the embedded default for `make run`.

Conditional writes: create-only links a complete temp file into place (`os.link` fails if the
name exists, atomically, and readers never see a partial file); compare-and-swap holds an
exclusive `flock` on a hidden `.<name>.lock` beside the object while it compares and renames.
flock locks belong to an open file, so they exclude threads as well as processes, and the kernel
drops them when a holder dies (even by SIGKILL). On NFS, Linux emulates flock with POSIX locks,
which exclude processes only: there, give each pusher its own process (KFP does).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from kfops import dataio, errors
from kfops.store import base


class LocalStore(base.Store):
    """Objects as files under a root directory; writes go through temp file + rename."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        key = key.strip("/")
        path = (self.root / key).resolve()
        if not key or self.root not in path.parents:
            raise errors.ConfigError(f"invalid store key {key!r}")
        return path

    def put_file(self, key: str, path: str | os.PathLike) -> None:
        """Copies a file in atomically."""
        try:
            _copy_atomic(path, self._path(key), ".tmp")
        except FileNotFoundError as e:
            raise errors.StorageError(f"cannot upload {path}: no such file") from e

    def put_bytes(self, key: str, data: bytes) -> None:
        """Writes bytes atomically."""
        dataio.atomic_write_bytes(self._path(key), data)

    def put_bytes_if(self, key: str, data: bytes, expected_tag: str | None) -> str:
        """Create-only (expected_tag None) by link, or compare-and-swap under the key's lock."""
        path = self._path(key)
        if expected_tag is None:
            _link_new(path, data, key)
        else:
            with _locked(path):
                try:
                    current = _tag(path.read_bytes())
                except FileNotFoundError:
                    current = None
                if current != expected_tag:
                    raise base.PreconditionFailed(
                        f"{key!r} in {self.uri} changed since it was read (compare-and-swap lost)"
                    )
                dataio.atomic_write_bytes(path, data)
        return _tag(data)

    def get_bytes_tagged(self, key: str) -> tuple[bytes, str]:
        """The bytes and their sha256 (the tag: equal content, equal tag, as S3 ETags)."""
        data = self.get_bytes(key)
        return data, _tag(data)

    def get_file(self, key: str, path: str | os.PathLike) -> None:
        """Copies an object out via a temp file, so `path` is never left half-written."""
        src = self._path(key)
        if not src.is_file():
            raise errors.NotFound(f"no object {key!r} in {self.uri}")
        _copy_atomic(src, path, ".part")

    def get_bytes(self, key: str) -> bytes:
        """Reads an object whole."""
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError) as e:
            raise errors.NotFound(f"no object {key!r} in {self.uri}") from e

    def open_read(self, key: str) -> BinaryIO:
        """Opens an object for streamed reading."""
        try:
            return open(self._path(key), "rb")  # noqa: SIM115 (caller closes)
        except (FileNotFoundError, IsADirectoryError) as e:
            raise errors.NotFound(f"no object {key!r} in {self.uri}") from e

    def exists(self, key: str) -> bool:
        """Whether a file exists at the key."""
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under a prefix, skipping in-flight temp files."""
        # Walk only the directory the prefix names (e.g. models/churn/), not the whole store.
        start = self.root.joinpath(*prefix.split("/")[:-1]).resolve()
        if not start.is_dir() or self.root not in (start, *start.parents):
            return iter(())
        keys = []
        for dirpath, _, files in os.walk(start):
            for name in files:
                if name.startswith(".") and name.endswith((".tmp", ".lock")):
                    continue  # in-flight temp files and compare-and-swap locks
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        """Removes a file if present."""
        self._path(key).unlink(missing_ok=True)


def _copy_atomic(src: str | os.PathLike, dest: str | os.PathLike, suffix: str) -> None:
    """Copies via a temp file beside `dest` and renames it, so `dest` is never half-written."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=suffix)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _tag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _link_new(path: Path, data: bytes, key: str) -> None:
    """Writes a complete hidden file, then links it to `path`; refuses if `path` exists."""
    staged = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    dataio.atomic_write_bytes(staged, data)
    try:
        os.link(staged, path)
    except FileExistsError as e:
        raise base.PreconditionFailed(f"{key!r} already exists (create-only write)") from e
    finally:
        staged.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(path: Path):
    """Holds an exclusive flock on `.<name>.lock` beside `path` (created on first use)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
