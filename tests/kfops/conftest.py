"""Fixtures for tests that need several independent Store instances over one location."""

import uuid

import pytest

from kfops.store import local, s3


@pytest.fixture(params=["local", "s3-server", "s3-lock"])
def stores(request, tmp_path):
    """A factory of independent Store instances over one fresh location (one per writer).

    s3-server uses SeaweedFS's own If-None-Match / If-Match; s3-lock the lock fallback, on the
    same real server.
    """
    if request.param == "local":
        return lambda: local.LocalStore(tmp_path / "store")
    server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_shared_bucket")
    prefix = f"c-{uuid.uuid4().hex[:12]}"
    tuning = s3.S3Tuning(conditional_writes=request.param.removeprefix("s3-"))
    return lambda: server.store(bucket, prefix, tuning)
