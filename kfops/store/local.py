"""A store in a local directory: the embedded default for `make run`."""

from __future__ import annotations

import os
import shutil
import tempfile
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
                if name.startswith(".") and name.endswith(".tmp"):
                    continue
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
