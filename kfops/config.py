"""Settings that come from the environment, read once at the edge (CLI, server, component body).

Library functions take these objects as arguments; nothing reads `os.environ` at import time.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from kfops import errors

# Where `kfops run` registers models and every reading command looks by default (`--store`).
LOCAL_STORE = ".kfops/store"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclasses.dataclass(frozen=True)
class StoreSettings:
    """How to reach S3/MinIO. Keys are excluded from repr so they never reach logs.

    Attributes:
        endpoint: host[:port] of the S3 endpoint (MinIO style, no scheme), e.g. "minio:9000".
        access_key: access key id.
        secret_key: secret key; never printed.
        secure: use https.
        region: optional region; MinIO ignores it.
    """

    endpoint: str | None = None
    access_key: str | None = dataclasses.field(default=None, repr=False)
    secret_key: str | None = dataclasses.field(default=None, repr=False)
    secure: bool = False
    region: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StoreSettings:
        """Reads MINIO_ENDPOINT, MINIO_ACCESS_KEY, MINIO_SECRET_KEY, MINIO_SECURE, MINIO_REGION.

        Raises:
            ConfigError: MINIO_SECURE is not a boolean word.
        """
        env = os.environ if environ is None else environ
        endpoint = env.get("MINIO_ENDPOINT") or None
        secure_raw = env.get("MINIO_SECURE", "false").strip().lower()
        if secure_raw not in _TRUE | _FALSE:
            raise errors.ConfigError(f"MINIO_SECURE must be true or false, got {secure_raw!r}")
        secure = secure_raw in _TRUE
        if endpoint and "://" in endpoint:
            # Accept a URL too, as users often paste one; the scheme decides `secure`.
            scheme, _, endpoint = endpoint.partition("://")
            secure = scheme == "https"
            endpoint = endpoint.rstrip("/")
        return cls(
            endpoint=endpoint,
            access_key=env.get("MINIO_ACCESS_KEY") or None,
            secret_key=env.get("MINIO_SECRET_KEY") or None,
            secure=secure,
            region=env.get("MINIO_REGION") or None,
        )

    def secrets(self) -> tuple[str, ...]:
        """The values that must never appear in output (used by redaction and tests)."""
        return tuple(s for s in (self.secret_key,) if s)
