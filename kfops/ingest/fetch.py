"""Turn a source URI into a local file: local paths as they are; http(s) and s3 downloaded.

Downloads are streamed to a caller-owned directory with a size bound, so a huge or endless
response fails with a clear error instead of filling the disk or memory.
"""

from __future__ import annotations

import dataclasses
import http.client
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from kfops import config, errors
from kfops import store as store_mod

_CHUNK = 1 << 20
SCHEMES = ("builtin:", "file://", "http://", "https://", "s3://")


@dataclasses.dataclass(frozen=True)
class Fetched:
    """A local copy of a source.

    Attributes:
        path: the local file to read.
        name: the file name the format is inferred from (URL path or object key, not the temp name).
        content_type: the HTTP Content-Type, when there was one.
    """

    path: Path
    name: str
    content_type: str | None = None


def redact(uri: str) -> str:
    """The URI without credentials or query values, safe for errors, logs and metadata.

    Presigned URLs carry their signature in the query and `https://user:pass@host` carries a
    password; neither may leak into artifact metadata.
    """
    parts = urllib.parse.urlsplit(uri)
    secret = parts.password or parts.username or parts.query
    if parts.scheme not in ("http", "https") or not secret:
        return uri
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    query = "&".join(f"{k}=***" for k, _ in urllib.parse.parse_qsl(parts.query, True))
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def fetch(
    source: str,
    workdir: Path,
    *,
    settings: config.StoreSettings | None,
    max_bytes: int,
    timeout: float,
) -> Fetched:
    """Makes `source` available as a local file (downloading into `workdir` when remote).

    Raises:
        ConfigError: unsupported URI scheme or an s3 URI without a key.
        DataError: missing local file, HTTP error, unreachable host, timeout, too large.
        StorageError: the object store failed (propagated from kfops.store).
    """
    if source.startswith(("http://", "https://")):
        return _download(source, workdir, max_bytes, timeout)
    if source.startswith("s3://"):
        return _from_s3(source, workdir, settings, max_bytes)
    if source.startswith("file://"):
        source = urllib.parse.unquote(urllib.parse.urlsplit(source).path)
    elif "://" in source:
        scheme = source.split("://", 1)[0]
        raise errors.ConfigError(
            f"unsupported source scheme {scheme!r}; use a path or one of {', '.join(SCHEMES)}"
        )
    return _local(Path(source).expanduser(), max_bytes)


def _local(path: Path, max_bytes: int) -> Fetched:
    if path.is_dir():
        raise errors.DataError(f"{path} is a directory; name one data file")
    try:
        size = path.stat().st_size
    except FileNotFoundError as e:
        raise errors.DataError(f"no such file: {path}") from e
    except OSError as e:
        raise errors.DataError(f"cannot read {path}: {e.strerror}") from e
    _check_size(str(path), size, max_bytes)
    return Fetched(path=path, name=path.name)


def _from_s3(
    uri: str, workdir: Path, settings: config.StoreSettings | None, max_bytes: int
) -> Fetched:
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise errors.ConfigError(f"s3 source {uri!r} must name an object: s3://bucket/key")
    name = key.rsplit("/", 1)[-1]
    dest = workdir / name
    store_mod.open_store(f"s3://{bucket}", settings).get_file(key, dest)
    _check_size(uri, dest.stat().st_size, max_bytes)
    return Fetched(path=dest, name=name)


def _download(url: str, workdir: Path, max_bytes: int, timeout: float) -> Fetched:
    shown = redact(url)
    name = Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name or "download"
    dest = workdir / name
    request = urllib.request.Request(url, headers={"User-Agent": "kfops-ingest"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit():
                _check_size(shown, int(declared), max_bytes)
            _copy_bounded(response, dest, shown, max_bytes)
            content_type = response.headers.get_content_type()
    except urllib.error.HTTPError as e:
        raise errors.DataError(f"GET {shown} failed: HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise errors.DataError(f"cannot reach {shown}: {e.reason}") from e
    except TimeoutError as e:
        raise errors.DataError(f"GET {shown} timed out after {timeout:g} s") from e
    except (http.client.HTTPException, ConnectionError) as e:
        raise errors.DataError(f"download of {shown} was interrupted: {e!r}") from e
    return Fetched(path=dest, name=name, content_type=content_type)


def _copy_bounded(response, dest: Path, shown: str, max_bytes: int) -> None:
    """Streams the body to `dest`, stopping as soon as it exceeds `max_bytes`."""
    copied = 0
    with open(dest, "wb") as out:
        while chunk := response.read(_CHUNK):
            copied += len(chunk)
            if copied > max_bytes:
                raise errors.DataError(
                    f"{shown} is larger than max_bytes={max_bytes}; raise the limit or sample it"
                )
            out.write(chunk)


def _check_size(shown: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise errors.DataError(
            f"{shown} is {size} bytes, more than max_bytes={max_bytes}; "
            "raise the limit or sample it"
        )
