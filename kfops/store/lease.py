"""A lease: a time-limited claim on one store key, kept alive by its holder while it works.

Taken by a create-only write, or, when the key holds a lease whose holder stopped renewing it
(died, was killed), by compare-and-swap on that stale lease: of two takers exactly one wins.
While held, a heartbeat thread renews it every quarter of its duration, by compare-and-swap too,
so a holder learns it lost the lease (`LeaseLost`) instead of writing on after someone else took
over. Expiry compares wall clocks of different machines: keep the duration far above their skew.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from kfops import errors
from kfops.store import base

_LOG = logging.getLogger(__name__)


class LeaseLost(base.PreconditionFailed):
    """Another writer took over the lease (it expired); the holder must stop writing."""


def owner() -> str:
    """Who holds a lease, for messages: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Lease:
    """A held lease; build it with `acquire`. Use `kept_alive()` around the guarded work."""

    def __init__(self, store: base.Store, key: str, seconds: float, tag: str, body: dict):
        self.store, self.key, self.seconds = store, key, seconds
        self._tag, self._body = tag, body
        self._lost: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # renewals from the heartbeat and from `renew` alternate

    @classmethod
    def acquire(cls, store: base.Store, key: str, seconds: float) -> Lease | None:
        """Takes the lease if it is free or expired; None if a live holder has it."""
        body = {"token": uuid.uuid4().hex, "owner": owner(), **_expiry(seconds)}
        data = _encode(body)
        try:
            return cls(store, key, seconds, store.put_bytes_if(key, data, None), body)
        except base.PreconditionFailed:
            pass
        try:
            current, tag = store.get_bytes_tagged(key)
        except errors.NotFound:
            return None  # released meanwhile: let the caller try again or move on
        if _decode(current).get("token") == body["token"]:
            return cls(store, key, seconds, tag, body)  # our create landed; its answer was lost
        if not expired(current):
            return None
        try:
            return cls(store, key, seconds, store.put_bytes_if(key, data, tag), body)
        except base.PreconditionFailed:
            return None  # another taker was first

    @property
    def holder(self) -> dict[str, Any]:
        """The lease as stored: token, owner, expiry."""
        return dict(self._body)

    def check(self) -> None:
        """Raises LeaseLost if a renewal found the lease taken over (or unrenewable too long)."""
        if self._lost:
            raise LeaseLost(self._lost)

    def renew(self) -> None:
        """Extends the lease now by compare-and-swap.

        Raises:
            LeaseLost: someone else holds it now.
        """
        self.check()
        with self._lock:
            body = {**self._body, **_expiry(self.seconds)}
            try:
                self._tag = self.store.put_bytes_if(self.key, _encode(body), self._tag)
            except base.PreconditionFailed as e:
                self._lost = f"lost {self.store.url_for(self.key)}: another writer took it over"
                raise LeaseLost(self._lost) from e
            self._body = body

    def kept_alive(self) -> _Heartbeat:
        """A context that renews the lease in a background thread until it exits."""
        return _Heartbeat(self)

    def release(self) -> None:
        """Marks the lease expired (if still ours), so the next writer may take over at once.

        Best effort: a store failure is logged, and the lease then simply expires.
        """
        self._stop.set()
        if self._lost:
            return
        with self._lock:
            body = {**self._body, "expires_at": 0.0, "expires": _iso(0.0)}
            try:
                self.store.put_bytes_if(self.key, _encode(body), self._tag)
            except errors.KfopsError as e:
                _LOG.warning("could not release %s: %s", self.store.url_for(self.key), e)

    def drop(self) -> None:
        """Deletes the lease object once the guarded work is complete and visible."""
        self._stop.set()
        self.store.delete(self.key)

    def _beat(self) -> None:
        last_ok = time.monotonic()
        while not self._stop.wait(self.seconds / 4):
            try:
                self.renew()
                last_ok = time.monotonic()
            except LeaseLost:
                return
            except errors.KfopsError as e:  # store unreachable: keep trying until expiry
                _LOG.warning("renewing %s failed: %s", self.store.url_for(self.key), e)
                if time.monotonic() - last_ok > self.seconds:
                    self._lost = f"could not renew {self.store.url_for(self.key)} in time: {e}"
                    return


class _Heartbeat:
    def __init__(self, lease: Lease):
        self.lease = lease
        self.thread = threading.Thread(target=lease._beat, name="kfops-lease", daemon=True)

    def __enter__(self) -> Lease:
        self.thread.start()
        return self.lease

    def __exit__(self, *exc) -> None:
        self.lease._stop.set()
        self.thread.join()


def expired(data: bytes) -> bool:
    """Whether a stored lease no longer protects anything (unreadable counts as expired)."""
    expires_at = _decode(data).get("expires_at", 0.0)
    return not isinstance(expires_at, int | float) or time.time() > expires_at


def describe(data: bytes) -> str:
    """'<owner> until <time>' for messages about a live lease."""
    body = _decode(data)
    return f"{body.get('owner', '?')} until {body.get('expires', '?')}"


def _expiry(seconds: float) -> dict[str, Any]:
    at = time.time() + seconds
    return {"expires_at": at, "expires": _iso(at)}


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat(timespec="seconds")


def _encode(body: dict) -> bytes:
    return (json.dumps(body, sort_keys=True) + "\n").encode()


def _decode(data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
