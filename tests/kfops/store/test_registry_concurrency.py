"""Concurrent pushers of one model name, on the local store and on a real S3 server.

Each pusher has its own Store instance, as separate pods would; the killed pusher is a real
process ended by SIGKILL.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from kfops import config, errors, registry, store
from kfops.store import lease

PUSHERS = 8


def _files(tmp_path, tag, size=64 << 10):
    """A version's files whose bytes say who pushed them."""
    folder = tmp_path / tag
    folder.mkdir()
    model, schema = folder / "model.joblib", folder / "schema.json"
    model.write_bytes(tag.encode() + os.urandom(size))
    schema.write_text(json.dumps({"pusher": tag}))
    return {"model.joblib": model, "schema.json": schema}


def _stored_bytes(reg, version, fname, tmp_path):
    out = tmp_path / f"fetched-{version}"
    reg.fetch("churn", version, out, [fname])
    return (out / fname).read_bytes()


def test_eight_concurrent_pushers_each_get_their_own_version_and_promotion(stores, tmp_path):
    files = [_files(tmp_path, f"pusher-{i}") for i in range(PUSHERS)]
    barrier, results, failures = threading.Barrier(PUSHERS), [None] * PUSHERS, []

    def push(i):
        reg = registry.Registry(stores(), lease_seconds=30)
        barrier.wait()
        try:
            results[i] = reg.register("churn", files[i], {"pusher": i}).version
            reg.promote("churn", results[i])
        except Exception as e:  # noqa: BLE001 (collected and asserted below)
            failures.append(e)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(PUSHERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    reg = registry.Registry(stores())
    assert sorted(results, key=int) == reg.versions("churn") == [str(n) for n in range(1, 9)]
    for i, version in enumerate(results):
        assert reg.manifest("churn", version)["metadata"] == {"pusher": i}
        for fname, path in files[i].items():
            assert _stored_bytes(reg, version, fname, tmp_path) == path.read_bytes()
    pointer = reg.champion_pointer("churn")
    promoted = [*pointer["previous"], pointer["version"]]
    assert sorted(promoted, key=int) == reg.versions("churn")  # no promotion lost or doubled
    assert not any(k.endswith(registry.LEASE_FILE) for k in reg.store.list("models/"))


def test_a_retry_never_deletes_a_live_siblings_files(stores, tmp_path):
    """KFP retries a step while its first attempt may still run: both must land, intact."""
    first_files, retry_files = _files(tmp_path, "first"), _files(tmp_path, "retry")
    registry.Registry(stores()).register("churn", _files(tmp_path, "v1"))
    first_store = stores()
    uploaded, resume = threading.Event(), threading.Event()
    real_put = first_store.put_file

    def put_then_pause(key, path):
        real_put(key, path)
        uploaded.set()
        resume.wait(30)

    first_store.put_file = put_then_pause  # the first attempt stalls mid-push, alive
    first = registry.Registry(first_store, lease_seconds=1.0)  # renewed every 0.25 s
    outcome = {}
    pusher = threading.Thread(
        target=lambda: outcome.update(v=first.register("churn", first_files).version)
    )
    pusher.start()
    assert uploaded.wait(30)
    time.sleep(1.5)  # longer than the lease: only the heartbeat keeps it
    retry = registry.Registry(stores()).register("churn", retry_files)
    in_flight = list(first_store.list("models/churn/2/"))
    resume.set()
    pusher.join(30)

    assert retry.version == "3" and outcome["v"] == "2"
    assert "models/churn/2/model.joblib" in in_flight  # not deleted as a "leftover"
    reg = registry.Registry(stores())
    for version, files in (("2", first_files), ("3", retry_files)):
        for fname, path in files.items():
            assert _stored_bytes(reg, version, fname, tmp_path) == path.read_bytes()


def test_explicit_version_held_by_a_live_push_is_refused_naming_the_holder(stores, tmp_path):
    reg = registry.Registry(stores())
    held = lease.Lease.acquire(reg.store, "models/churn/4/lease.json", 30)
    reg.store.put_bytes("models/churn/4/model.joblib", b"in flight")
    with pytest.raises(errors.AlreadyExists, match=r"version 4 is being pushed by .*:\d+ until"):
        reg.register("churn", _files(tmp_path, "late"), version="4")
    assert reg.store.get_bytes("models/churn/4/model.joblib") == b"in flight"
    held.release()
    assert reg.register("churn", _files(tmp_path, "now"), version="4").version == "4"


def test_champion_swap_loses_no_update_under_concurrent_promotions(stores, tmp_path):
    reg = registry.Registry(stores())
    for i in range(PUSHERS):
        reg.register("churn", _files(tmp_path, f"m{i}", size=16))
    barrier = threading.Barrier(PUSHERS)

    def promote(version):
        own = registry.Registry(stores())
        barrier.wait()
        own.promote("churn", version)

    threads = [threading.Thread(target=promote, args=(str(v),)) for v in range(1, PUSHERS + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pointer = reg.champion_pointer("churn")
    assert sorted([*pointer["previous"], pointer["version"]], key=int) == reg.versions("churn")


_CHILD = """
import json, pathlib, sys, time
from kfops import config, registry, store

uri, marker, lease_seconds, files = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
st = store.open_store(uri, config.StoreSettings.from_env())
real_put = st.put_file

def put_then_hang(key, path):
    real_put(key, path)
    pathlib.Path(marker).write_text(key)
    time.sleep(600)  # the test SIGKILLs this process here, mid-push

st.put_file = put_then_hang
registry.Registry(st, lease_seconds=lease_seconds).register("churn", json.loads(files))
"""


@pytest.fixture(params=["local", "s3"])
def store_uri_env(request, tmp_path):
    """A store URI and the environment a separate process needs to open it."""
    if request.param == "local":
        return str(tmp_path / "store"), {}
    server = request.getfixturevalue("s3_server")
    bucket = server.make_bucket("kfops-kill")
    env = {
        "MINIO_ENDPOINT": server.endpoint,
        "MINIO_ACCESS_KEY": server.access_key,
        "MINIO_SECRET_KEY": server.secret_key,
        "MINIO_SECURE": "false",
    }
    return f"s3://{bucket}/reg", env


def test_pusher_killed_by_sigkill_mid_push_leaves_registry_consistent(
    store_uri_env, model_files, tmp_path
):
    uri, env = store_uri_env
    reg = registry.Registry(store.open_store(uri, config.StoreSettings.from_env(env)))
    reg.register("churn", model_files)
    reg.promote("churn", "1")
    files = {k: str(v) for k, v in _files(tmp_path, "killed", size=1 << 20).items()}
    marker = tmp_path / "mid-push"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, uri, str(marker), "2", json.dumps(files)],
        env={**os.environ, **env},
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the pusher ended before it was killed"
            assert time.monotonic() < deadline, "the pusher never reached mid-push"
            time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL

    leftovers = list(reg.store.list("models/churn/2/"))
    assert "models/churn/2/lease.json" in leftovers and len(leftovers) == 2  # lease + one file
    assert reg.versions("churn") == ["1"] and reg.champion("churn") == "1"
    assert reg.load("churn").version == "1"

    # The next push succeeds at once, beside the dead push's still-leased number.
    nxt = reg.register("churn", _files(tmp_path, "next"))
    reg.promote("churn", nxt.version)
    assert nxt.version == "3" and reg.champion("churn") == "3"
    assert list(reg.store.list("models/churn/2/")) == leftovers
    assert reg.sweep("churn") == []  # the lease has not expired: nothing is swept yet

    time.sleep(2.2)  # the killed pusher's lease (2 s) runs out
    assert reg.sweep("churn") == ["2"]
    assert list(reg.store.list("models/churn/2/")) == []
    assert reg.versions("churn") == ["1", "3"]


def test_racing_takers_of_an_expired_lease_exactly_one_wins(stores):
    key = "models/churn/5/lease.json"
    dead = lease.Lease.acquire(stores(), key, 0.2)
    time.sleep(0.3)  # its holder stopped renewing: expired
    barrier, taken = threading.Barrier(PUSHERS), []

    def take():
        own = stores()
        barrier.wait()
        taken.append(lease.Lease.acquire(own, key, 30))

    threads = [threading.Thread(target=take) for _ in range(PUSHERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [held for held in taken if held is not None]
    assert len(winners) == 1
    assert json.loads(stores().get_bytes(key))["token"] == winners[0].holder["token"]
    with pytest.raises(lease.LeaseLost):
        dead.renew()


def test_a_pusher_that_lost_its_lease_stops_writing_and_registers_nothing(stores, tmp_path):
    """A pusher cut off from the store for longer than its lease: the retry takes its number;
    when the first one comes back it must fail loudly, not overwrite the retry's files."""
    first_files, retry_files = _files(tmp_path, "first"), _files(tmp_path, "retry")
    first_store = stores()
    real_put, real_cas = first_store.put_file, first_store.put_bytes_if
    uploaded, resume, cut_off = threading.Event(), threading.Event(), threading.Event()

    def put_then_pause(key, path):
        real_put(key, path)
        if not uploaded.is_set():
            uploaded.set()
            resume.wait(30)

    def renew_unless_cut_off(key, data, tag):
        if cut_off.is_set():  # the heartbeat cannot reach the store
            raise errors.StorageError("simulated network partition")
        return real_cas(key, data, tag)

    first_store.put_file, first_store.put_bytes_if = put_then_pause, renew_unless_cut_off
    first = registry.Registry(first_store, lease_seconds=0.4)
    failure = []
    pusher = threading.Thread(target=lambda: _capture(failure, first.register, first_files))
    pusher.start()
    assert uploaded.wait(30)
    cut_off.set()
    time.sleep(1.0)  # the lease runs out, and the heartbeat gives up after as long
    retry = registry.Registry(stores()).register("churn", retry_files)
    cut_off.clear()
    resume.set()
    pusher.join(30)

    assert retry.version == "1"  # took over the dead-looking push's number
    assert isinstance(failure[0], lease.LeaseLost)
    reg = registry.Registry(stores())
    assert reg.versions("churn") == ["1"]
    for fname, path in retry_files.items():
        assert _stored_bytes(reg, "1", fname, tmp_path) == path.read_bytes()


def _capture(sink, register, files):
    try:
        register("churn", files)
        sink.append(None)
    except Exception as e:  # noqa: BLE001 (the test inspects whatever the push raised)
        sink.append(e)
